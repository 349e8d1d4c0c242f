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

use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use telemetry_stack::{flag, parse_flags};

const USAGE: &str = "bookstore [--listen 127.0.0.1:8080] [--threads 8] [--no-delay]";

struct Store {
    books: Mutex<BTreeMap<String, Value>>,
    next: AtomicU64,
    delay: bool,
}

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
    let mut books = BTreeMap::new();
    for (id, title, author) in [
        ("b1", "The Left Hand of Darkness", "Ursula K. Le Guin"),
        ("b2", "Neuromancer", "William Gibson"),
        ("b3", "Kindred", "Octavia E. Butler"),
    ] {
        books.insert(
            id.to_string(),
            json!({"id": id, "title": title, "author": author}),
        );
    }
    let store = Arc::new(Store {
        books: Mutex::new(books),
        next: AtomicU64::new(100),
        delay: !flags.contains_key("no-delay"),
    });
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

fn handle(store: &Store, method: &str, url: &str, body: &str) -> (u16, Value) {
    let path = url.split('?').next().unwrap_or("");
    let segs: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    let pause = |ms: u64| {
        if store.delay {
            std::thread::sleep(Duration::from_millis(ms));
        }
    };
    let books = || store.books.lock().unwrap_or_else(|p| p.into_inner());
    match (method, segs.as_slice()) {
        ("GET", ["healthz"]) => (200, json!({"status": "ok"})),
        ("GET", ["books"]) => {
            pause(12);
            (200, Value::Array(books().values().cloned().collect()))
        }
        ("POST", ["books"]) => {
            pause(20);
            let parsed: Value = serde_json::from_str(body).unwrap_or(Value::Null);
            let title = parsed["title"].as_str().unwrap_or("");
            if title.is_empty() {
                return (400, json!({"error": "title is required"}));
            }
            let id = format!("b{}", store.next.fetch_add(1, Ordering::Relaxed));
            let book = json!({"id": id, "title": title, "author": parsed["author"]});
            books().insert(id, book.clone());
            (201, book)
        }
        ("GET", ["books", id]) => {
            pause(4);
            match books().get(*id) {
                Some(b) => (200, b.clone()),
                None => (404, json!({"error": format!("no book {id}")})),
            }
        }
        ("DELETE", ["books", id]) => {
            pause(8);
            match books().remove(*id) {
                Some(_) => (204, Value::Null),
                None => (404, json!({"error": format!("no book {id}")})),
            }
        }
        ("GET", ["books", _, "reviews"]) => {
            pause(40);
            (503, json!({"error": "reviews backend unavailable"}))
        }
        ("GET", ["shelves", shelf, "books"]) => {
            pause(6);
            let list: Vec<Value> = books().values().take(2).cloned().collect();
            (200, json!({"shelf": shelf, "books": list}))
        }
        ("GET", ["inventory"]) => {
            pause(2);
            (500, json!({"error": "inventory: division by zero"}))
        }
        (_, ["healthz" | "books" | "inventory"] | ["books", _] | ["books", _, "reviews"])
        | (_, ["shelves", _, "books"]) => (405, json!({"error": "method not allowed"})),
        _ => (404, json!({"error": "no such route"})),
    }
}
