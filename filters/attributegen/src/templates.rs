//! Route templates: `GET /shelves/{shelf}/books/{book}` entries of a `match`
//! list, compiled at configure time into radix trees (matchit) and answered
//! with one read of the method and the path, however many there are.
//!
//! Semantics:
//! - A template is `[METHOD ]PATH`: `METHOD` is one HTTP method or `*` (any;
//!   the default); `PATH` starts with `/` and uses `{name}` for one segment
//!   (also `img-{id}.png`) and `{*rest}` for the rest of the path.
//! - It matches `request.url_path` (no query string), exactly: the trailing
//!   slash is significant (`/books` and `/books/` are different templates).
//! - Consecutive template entries of a `match` list form one group; the group
//!   answers with its most specific template: a literal segment beats a
//!   parameter, a parameter beats a catch-all, and a template naming the
//!   method beats a `*` one. CEL entries before and after the group keep
//!   first-match order.
//! - Templates that collide (`/a/{x}` and `/a/{y}` for one method; a `*`
//!   template that the radix tree of a method named in the group cannot
//!   hold, such as `/{*rest}` beside `POST /{x}/b`) or can never match (a query string in the path, a character a
//!   URL path cannot hold, a copy of an earlier group's
//!   template, an entry after an always-true one) are configuration errors.

use matchit::Router;

/// Most parameters in one template.
pub const MAX_PARAMS: usize = 16;

/// A parsed template.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Template {
    /// `None` for any method.
    pub method: Option<String>,
    /// Path template in matchit syntax.
    pub path: String,
}

impl Template {
    /// Parses `[METHOD ]PATH`.
    pub fn parse(text: &str) -> Result<Template, String> {
        let text = text.trim();
        let (method, path) = match text.split_once(char::is_whitespace) {
            Some((m, p)) => (Some(m), p.trim()),
            None => (None, text),
        };
        let method = match method {
            None | Some("*") => None,
            Some(m) if !m.is_empty() && m.bytes().all(|b| b.is_ascii_uppercase()) => {
                Some(m.to_string())
            }
            Some(m) => {
                return Err(format!(
                    "method {m:?} is not an upper-case HTTP method or *"
                ))
            }
        };
        if !path.starts_with('/') {
            return Err(format!("path {path:?} must start with /"));
        }
        if path.contains(['?', '#']) {
            return Err(
                "can never match: request.url_path never holds a query string or fragment"
                    .to_string(),
            );
        }
        if path.contains(char::is_whitespace) {
            return Err("path contains whitespace".to_string());
        }
        // What a request's path can hold (RFC 3986 `pchar`s, `/`, `%`), plus
        // the template's braces: anything else could never match.
        if let Some(c) = path.chars().find(|c| !is_path_char(*c)) {
            return Err(format!(
                "can never match: {c:?} is not allowed in a URL path (percent-encode it)"
            ));
        }
        let params = check_params(path)?;
        // matchit panics past 25 parameters in one route.
        if params > MAX_PARAMS {
            return Err(format!("more than {MAX_PARAMS} parameters"));
        }
        Ok(Template {
            method,
            path: path.to_string(),
        })
    }

    /// The template with parameter names erased: equal keys match the same
    /// requests.
    pub fn shape(&self) -> String {
        let mut out = String::with_capacity(self.path.len() + 8);
        out.push_str(self.method.as_deref().unwrap_or("*"));
        out.push(' ');
        let mut in_param = false;
        for c in self.path.chars() {
            match c {
                '{' if !in_param => {
                    in_param = true;
                    out.push('{');
                }
                '}' if in_param => {
                    in_param = false;
                    out.push('}');
                }
                '*' if in_param => out.push('*'),
                _ if in_param => {}
                c => out.push(c),
            }
        }
        out
    }
}

/// Characters a template path may hold: unreserved and sub-delims, `:`
/// `@` `/` `%` (RFC 3986), and the braces of parameters.
fn is_path_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || "-._~!$&'()*+,;=:@/%{}".contains(c)
}

/// Checks the braces of a path template and counts its parameters: a
/// request path never holds a raw brace (clients send `%7B`), so every brace
/// delimits a parameter, which is `{name}` or `{*name}` whose name
/// is letters, digits, `_`, `-` or `.` (what OpenAPI documents use), so no
/// brace, slash or control character can end up inside one.
fn check_params(path: &str) -> Result<usize, String> {
    let mut count = 0;
    let mut chars = path.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '{' if chars.peek() == Some(&'{') => {
                return Err(
                    "can never match: a request path holds a brace percent-encoded (%7B)"
                        .to_string(),
                );
            }
            '}' => return Err("unbalanced }".to_string()),
            '{' => {
                let mut name = String::new();
                loop {
                    match chars.next() {
                        Some('}') => break,
                        Some(c) => name.push(c),
                        None => return Err("unclosed {".to_string()),
                    }
                }
                let bare = name.strip_prefix('*').unwrap_or(&name);
                let valid = bare
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'));
                if bare.is_empty() || !valid {
                    return Err(format!(
                        "parameter {{{name}}}: a name is letters, digits, _, - or . (as {{book}} or {{*rest}})"
                    ));
                }
                count += 1;
            }
            _ => {}
        }
    }
    Ok(count)
}

/// A group of consecutive templates, compiled.
#[derive(Debug, Default)]
pub struct TemplateGroup {
    by_method: Vec<(String, Router<usize>)>,
    any: Router<usize>,
    len: usize,
}

/// One entry to compile: the template and what it answers (an index the
/// caller maps to a value), plus its position for error messages.
pub struct Entry {
    /// The template.
    pub template: Template,
    /// What a match returns.
    pub answer: usize,
}

impl TemplateGroup {
    /// Compiles a group. Errors are `(entry index, reason)`.
    pub fn build(entries: &[Entry]) -> Result<TemplateGroup, Vec<(usize, String)>> {
        let mut errors = Vec::new();
        let mut group = TemplateGroup {
            len: entries.len(),
            ..TemplateGroup::default()
        };
        // Explicit methods first: each gets its own tree.
        for (i, e) in entries.iter().enumerate() {
            let Some(m) = &e.template.method else {
                continue;
            };
            let router = match group.by_method.iter_mut().find(|(name, _)| name == m) {
                Some((_, r)) => r,
                None => {
                    group.by_method.push((m.clone(), Router::new()));
                    match group.by_method.last_mut() {
                        Some((_, r)) => r,
                        None => continue,
                    }
                }
            };
            if let Err(err) = router.insert(e.template.path.as_str(), e.answer) {
                errors.push((i, collision(&err, m)));
            }
        }
        // `*` templates: the any-method tree, and every method tree unless
        // that method has its own template there (method-specific wins).
        for (i, e) in entries.iter().enumerate() {
            if e.template.method.is_some() {
                continue;
            }
            if let Err(err) = group.any.insert(e.template.path.as_str(), e.answer) {
                errors.push((i, collision(&err, "*")));
                continue;
            }
            let shape = Template {
                method: None,
                path: e.template.path.clone(),
            }
            .shape();
            for (m, router) in &mut group.by_method {
                if let Err(err) = router.insert(e.template.path.as_str(), e.answer) {
                    // The same route for this method: the method-specific
                    // template wins. Any other clash is a collision, or the
                    // `*` template would silently not answer for `m`.
                    let same = entries.iter().any(|o| {
                        o.template.method.as_deref() == Some(m.as_str())
                            && Template {
                                method: None,
                                path: o.template.path.clone(),
                            }
                            .shape()
                                == shape
                    });
                    if !same {
                        errors.push((i, collision(&err, m)));
                    }
                }
            }
        }
        if errors.is_empty() {
            Ok(group)
        } else {
            Err(errors)
        }
    }

    /// The answer of the most specific template matching this request.
    pub fn lookup(&self, method: &str, url_path: &str) -> Option<usize> {
        let router = self
            .by_method
            .iter()
            .find(|(m, _)| m == method)
            .map_or(&self.any, |(_, r)| r);
        router.at(url_path).ok().map(|m| *m.value)
    }

    /// Number of templates in the group.
    pub fn len(&self) -> usize {
        self.len
    }

    /// True when the group has no templates.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
}

fn collision(err: &matchit::InsertError, method: &str) -> String {
    match err {
        matchit::InsertError::Conflict { with } => {
            format!("collides with the template \"{method} {with}\" of the same group")
        }
        other => format!("invalid template: {other}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn group(templates: &[&str]) -> TemplateGroup {
        let entries: Vec<Entry> = templates
            .iter()
            .enumerate()
            .map(|(i, t)| Entry {
                template: Template::parse(t).unwrap(),
                answer: i,
            })
            .collect();
        TemplateGroup::build(&entries).unwrap()
    }

    #[test]
    fn parses_method_and_path() {
        let t = Template::parse("GET /shelves/{shelf}/books/{book}").unwrap();
        assert_eq!(t.method.as_deref(), Some("GET"));
        assert_eq!(t.path, "/shelves/{shelf}/books/{book}");
        assert_eq!(Template::parse("/x").unwrap().method, None);
        assert_eq!(Template::parse("*  /x").unwrap().method, None);
        assert!(Template::parse("get /x").is_err());
        assert!(Template::parse("GET x").is_err());
        let many = "/{p}".repeat(MAX_PARAMS);
        assert!(Template::parse(&many).is_ok());
        // matchit panics on 26; found by the route_templates fuzz target.
        assert!(Template::parse(&format!("{many}/{{q}}")).is_err());
        assert!(Template::parse(&"/{p}".repeat(26)).is_err());
        assert!(Template::parse("GET /x?a=1")
            .unwrap_err()
            .contains("never match"));
        assert_eq!(
            Template::parse("GET /a/{x}/b/{*rest}").unwrap().shape(),
            "GET /a/{}/b/{*}"
        );
    }

    #[test]
    fn literal_beats_parameter_and_trailing_slash_counts() {
        let g = group(&[
            "GET /books/{id}",
            "GET /books/featured",
            "GET /books",
            "POST /books/",
            "/books/{id}/{*rest}",
        ]);
        assert_eq!(g.lookup("GET", "/books/42"), Some(0));
        assert_eq!(g.lookup("GET", "/books/featured"), Some(1));
        assert_eq!(g.lookup("GET", "/books"), Some(2));
        assert_eq!(g.lookup("GET", "/books/"), None);
        assert_eq!(g.lookup("POST", "/books/"), Some(3));
        assert_eq!(g.lookup("POST", "/books"), None);
        assert_eq!(g.lookup("DELETE", "/books/1/a/b"), Some(4));
        assert_eq!(g.lookup("GET", "/books/1/a/b"), Some(4));
        assert_eq!(g.lookup("PURGE", "/books/1"), None);
    }

    #[test]
    fn method_specific_beats_any_method() {
        let g = group(&["/items/{id}", "DELETE /items/{id}"]);
        assert_eq!(g.lookup("DELETE", "/items/1"), Some(1));
        assert_eq!(g.lookup("GET", "/items/1"), Some(0));
        assert_eq!(g.lookup("PURGE", "/items/1"), Some(0));
    }

    #[test]
    fn any_method_template_that_cannot_join_a_method_tree_is_an_error() {
        // matchit refuses `/{*rest}` next to `/{x}/b` in one tree (found by
        // the route_templates fuzz target). Silently leaving it out of POST's
        // tree would answer POST /v/c with nothing, or with a less specific
        // template: the configuration is rejected instead.
        let entries: Vec<Entry> = ["POST /{x}/b", "/{*rest}"]
            .iter()
            .enumerate()
            .map(|(i, t)| Entry {
                template: Template::parse(t).unwrap(),
                answer: i,
            })
            .collect();
        let errors = TemplateGroup::build(&entries).unwrap_err();
        assert_eq!(errors.len(), 1);
        assert_eq!(errors[0].0, 1);
        assert!(errors[0].1.contains("POST /{x}/b"), "{errors:?}");
        // In a group of its own (after a CEL entry, say) it is fine.
        let g = group(&["/{*rest}"]);
        assert_eq!(g.lookup("POST", "/v/c"), Some(0));
    }

    #[test]
    fn parameter_names_and_braces_are_checked() {
        for bad in [
            "/a/{}",
            "/a/{b{c}",
            "/a/{b",
            "/a/b}",
            "/a/{b c}",
            "/a/{\u{0}x}",
            "/a/{*}",
            "/a/{{b}}",
            "/a\u{0}",
            "/é",
        ] {
            assert!(Template::parse(bad).is_err(), "{bad:?} accepted");
        }
        for good in [
            "/a/{b}",
            "/a/{*rest}",
            "/img-{id}.png",
            "/a/{shelf-id}/{v1.x}",
        ] {
            assert!(Template::parse(good).is_ok(), "{good:?} rejected");
        }
    }

    #[test]
    fn collisions_are_errors() {
        let entries: Vec<Entry> = ["GET /a/{x}", "GET /a/{y}", "/b", "/b"]
            .iter()
            .enumerate()
            .map(|(i, t)| Entry {
                template: Template::parse(t).unwrap(),
                answer: i,
            })
            .collect();
        let errors = TemplateGroup::build(&entries).unwrap_err();
        assert_eq!(errors.len(), 2);
        assert_eq!(errors[0].0, 1);
        assert!(errors[0].1.contains("collides"), "{errors:?}");
        assert_eq!(errors[1].0, 3);
    }

    #[test]
    fn thousands_of_templates() {
        let texts: Vec<String> = (0..5000)
            .map(|i| format!("GET /api/v{}/resource{}/{{id}}", i % 7, i))
            .collect();
        let refs: Vec<&str> = texts.iter().map(String::as_str).collect();
        let g = group(&refs);
        assert_eq!(g.lookup("GET", "/api/v3/resource4999/abc"), None);
        assert_eq!(g.lookup("GET", "/api/v1/resource4999/abc"), Some(4999));
        assert_eq!(g.lookup("GET", "/api/v0/resource0/x"), Some(0));
    }
}
