//! The stack's upstream: a small book-store API in memory.
//!
//! | route | answers |
//! |---|---|
//! | `GET /books` | 200, the books (JSON) |
//! | `POST /books` `{"title","author"}` | 201 with the new book; 400 when the title is missing or empty |
//! | `GET /books/{id}` | 200, or 404 |
//! | `DELETE /books/{id}` | 204, or 404 |
//! | `GET /books/{id}/reviews` | 503: the reviews backend is down |
//! | `GET /shelves/{shelf}/books` | 200 |
//! | `GET /inventory` | 500: a bug |
//! | `GET /healthz` | 200 |
//! | anything else | 404 (unknown path) or 405 (wrong method) |
//!
//! Each route sleeps a few milliseconds (per route, `--no-delay` to turn it
//! off) so latency per operation shows in the dashboard.

use std::sync::Arc;
use telemetry_stack::bookstore::{handle, Store};
use telemetry_stack::{flag, parse_flags};

const USAGE: &str = "bookstore [--listen 127.0.0.1:8080] [--threads 8] [--no-delay]";

fn main() {
    let flags = parse_flags(USAGE);
    let listen = flags
        .get("listen")
        .cloned()
        .unwrap_or_else(|| "127.0.0.1:8080".to_string());
    let threads: usize = flag(&flags, "threads", 8, USAGE);
    let server = match tiny_http::Server::http(&listen) {
        Ok(s) => Arc::new(s),
        Err(e) => {
            eprintln!("bookstore: cannot listen on {listen}: {e}");
            std::process::exit(1);
        }
    };
    let store = Arc::new(Store::new(!flags.contains_key("no-delay")));
    eprintln!("bookstore listening on {listen}");
    let workers: Vec<_> = (0..threads.max(1))
        .map(|_| {
            let (server, store) = (server.clone(), store.clone());
            std::thread::spawn(move || {
                while let Ok(mut req) = server.recv() {
                    let mut body = String::new();
                    let _ = req.as_reader().read_to_string(&mut body);
                    let (code, out) = handle(&store, req.method().as_str(), req.url(), &body);
                    let mut resp = tiny_http::Response::from_string(if code == 204 {
                        String::new()
                    } else {
                        out.to_string()
                    })
                    .with_status_code(code);
                    if let Ok(h) = tiny_http::Header::from_bytes("content-type", "application/json")
                    {
                        resp = resp.with_header(h);
                    }
                    let _ = req.respond(resp);
                }
            })
        })
        .collect();
    for w in workers {
        let _ = w.join();
    }
}
