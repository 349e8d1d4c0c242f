//! The filter configurations the benchmark's variants use, as plain JSON
//! (serde_json only): shared with the native profile
//! (`scripts/profile-native`), which includes this file.

use serde_json::{json, Value};

/// Istio's classify-metrics example (istio.io "Classifying Metrics Based on
/// Request or Response"): three bookinfo operations, one with `matches()`.
pub fn bookinfo_ops() -> Value {
    json!({"output_attribute": "istio_operationId", "match": [
        {"value": "ListReviews", "condition": "request.url_path == '/reviews' && request.method == 'GET'"},
        {"value": "GetReview", "condition": "request.url_path.matches('^/reviews/[[:alnum:]]*$') && request.method == 'GET'"},
        {"value": "CreateReview", "condition": "request.url_path == '/reviews/' && request.method == 'POST'"}]})
}

/// The same example's response classes.
pub fn bookinfo_classes() -> Value {
    json!({"output_attribute": "istio_responseClass", "match": [
        {"value": "2xx", "condition": "response.code >= 200 && response.code <= 299"},
        {"value": "3xx", "condition": "response.code >= 300 && response.code <= 399"},
        {"value": "404", "condition": "response.code == 404"},
        {"value": "429", "condition": "response.code == 429"},
        {"value": "503", "condition": "response.code == 503"},
        {"value": "5xx", "condition": "response.code >= 500 && response.code <= 599"},
        {"value": "4xx", "condition": "response.code >= 400 && response.code <= 499"}]})
}

/// The bookinfo operations as route templates.
pub fn bookinfo_templates() -> Vec<Value> {
    vec![
        json!({"value": "ListReviews", "template": "GET /reviews"}),
        json!({"value": "GetReview", "template": "GET /reviews/{id}"}),
        json!({"value": "CreateReview", "template": "POST /reviews/"}),
    ]
}

/// trace-tags' two tags: a request header and a CEL expression.
pub fn trace_tags_config() -> Value {
    json!({"tags": [
        {"name": "tenant", "header": "x-tenant", "default": "anonymous"},
        {"name": "route", "expression": "request.method + ' ' + request.url_path"}]})
}
