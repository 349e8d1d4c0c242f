//! The book-store API's logic (see the `bookstore` binary for the routes),
//! apart from HTTP so the traffic plan can be checked against it.

use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::Duration;

/// The books, in memory.
pub struct Store {
    books: Mutex<BTreeMap<String, Value>>,
    next: AtomicU64,
    delay: bool,
}

impl Store {
    /// Three seeded books (`b1`..`b3`); `delay`: sleep a few ms per route.
    pub fn new(delay: bool) -> Store {
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
        Store {
            books: Mutex::new(books),
            next: AtomicU64::new(100),
            delay,
        }
    }
}

/// Answers one request: status and JSON body.
pub fn handle(store: &Store, method: &str, url: &str, body: &str) -> (u16, Value) {
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
