//! CEL in the dynamic module. Envoy's dynamic-module ABI has no CEL call:
//! the module evaluates every expression itself. `filter_common`'s native
//! subset (compiled by `filter_common::cel` beside the host's form) runs
//! first; everything else is compiled by `module-cel` ([`compile_full`]),
//! which gives Envoy's answer byte for byte or refuses the expression at
//! configuration time, naming it and the reason.

use crate::host::DynHost;
use filter_common::cel::CelValue;
use filter_common::host::{HostError, HostExpression};
use std::sync::{Mutex, PoisonError};

/// A compiled program's evaluation against one stream: the typed value.
pub type Program = Box<dyn Fn(&DynHost) -> Result<CelValue<'static>, HostError> + Send + Sync>;

/// Token of an expression the native subset evaluates (nothing registered).
const NATIVE_ONLY: u32 = 0;

/// Programs by token - 1; freed slots are `None`. Shared by every worker.
static PROGRAMS: Mutex<Vec<Option<std::sync::Arc<Program>>>> = Mutex::new(Vec::new());

/// Compiles `source` for the dynamic module: an expression the module
/// evaluates itself (the native subset, get-calls' default
/// `destination_service`) gets the native-only token; others go to
/// [`compile_full`].
pub fn compile(source: &str) -> Result<HostExpression, HostError> {
    let module_evaluates = filter_common::native_cel::compile(source).is_some()
        // get-calls reads the default destination_service itself.
        || get_calls::istio_service::is_default_expression(source);
    if module_evaluates {
        return Ok(HostExpression::new(NATIVE_ONLY, source, release));
    }
    compile_full(source)
}

/// Compiles an expression outside the native subset with `module-cel` and
/// registers its evaluation; the token names it.
pub fn compile_full(source: &str) -> Result<HostExpression, HostError> {
    let program = module_cel::compile(source).map_err(|_| HostError::ParseFailure)?;
    if unreadable(&program).is_some() {
        return Err(HostError::ParseFailure);
    }
    let token = register(Box::new(move |host: &DynHost| program.value(host)));
    Ok(HostExpression::new(token, source, release))
}

/// The first attribute `program` reads that Envoy's dynamic-module ABI
/// cannot give (e.g. `request.duration`, `request.time`: no attribute id
/// of Envoy 1.40 answers them), as its dotted path.
fn unreadable(program: &module_cel::Program) -> Option<String> {
    program.reads().iter().find_map(|read| {
        let path: Vec<&str> = read.path.iter().map(String::as_str).collect();
        let unreadable = crate::attributes::source(&path) == crate::attributes::Source::Unsupported;
        unreadable.then(|| path.join("."))
    })
}

/// The configuration line for an expression [`compile`] rejected: what
/// `module-cel` says about it.
pub fn unsupported_reason(source: &str) -> String {
    let why = match module_cel::compile(source) {
        // One log line: the parser's message spans several.
        Err(e) => e
            .to_string()
            .split_whitespace()
            .collect::<Vec<_>>()
            .join(" "),
        Ok(program) => match unreadable(&program) {
            Some(attribute) => format!(
                "CEL expression `{source}`: attribute `{attribute}` is not readable through \
                 Envoy's dynamic-module ABI (no attribute id gives it)"
            ),
            None => format!("CEL expression `{source}`: could not be registered"),
        },
    };
    format!(
        "{why} (the dynamic module evaluates CEL itself, Envoy's dynamic-module ABI has no CEL \
         call; the Wasm modules use Envoy's CEL)"
    )
}

/// Registers a program; its token (never 0).
pub fn register(program: Program) -> u32 {
    let mut programs = PROGRAMS.lock().unwrap_or_else(PoisonError::into_inner);
    let slot = programs.iter().position(Option::is_none);
    let program = Some(std::sync::Arc::new(program));
    let index = match slot {
        Some(i) => {
            if let Some(s) = programs.get_mut(i) {
                *s = program;
            }
            i
        }
        None => {
            programs.push(program);
            programs.len() - 1
        }
    };
    u32::try_from(index + 1).unwrap_or(NATIVE_ONLY)
}

/// Frees a token's program (when its configuration goes).
fn release(token: u32) {
    if token == NATIVE_ONLY {
        return;
    }
    let mut programs = PROGRAMS.lock().unwrap_or_else(PoisonError::into_inner);
    if let Some(slot) = programs.get_mut(token as usize - 1) {
        *slot = None;
    }
}

/// Evaluates a compiled expression: its program, or for a native-only
/// expression (whose native form deferred this request) `Unimplemented`.
pub fn evaluate(host: &DynHost, expr: &HostExpression) -> Result<CelValue<'static>, HostError> {
    let token = expr.token();
    if token == NATIVE_ONLY {
        return Err(HostError::Unimplemented);
    }
    let program = {
        let programs = PROGRAMS.lock().unwrap_or_else(PoisonError::into_inner);
        programs
            .get(token as usize - 1)
            .and_then(Clone::clone)
            .ok_or(HostError::NotFound)?
    };
    program(host)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn native_subset_compiles_and_the_rest_is_refused() {
        assert!(compile("request.url_path").is_ok());
        assert!(compile("request.method + ' ' + request.url_path").is_ok());
        assert_eq!(
            compile("request.headers.map(h, h)").err(),
            Some(HostError::ParseFailure)
        );
        assert!(
            unsupported_reason("request.headers.map(h, h)").contains("request.headers.map(h, h)")
        );
        // Compiles in module-cel, but the ABI has no attribute id for it.
        assert_eq!(
            compile("request.duration.getSeconds() * 1000").err(),
            Some(HostError::ParseFailure)
        );
        assert!(unsupported_reason("request.duration.getSeconds() * 1000")
            .contains("attribute `request.duration` is not readable"));
        assert!(compile("request.headers['x-a'] + 'b' == response.code_details").is_ok());
    }

    #[test]
    fn registered_programs_are_found_from_many_threads_and_freed() {
        let threads: Vec<_> = (0..4u8)
            .map(|n| {
                std::thread::spawn(move || {
                    (0..50).all(|_| {
                        let token = register(Box::new(move |_| Ok(CelValue::Int(n.into()))));
                        let expr = HostExpression::new(token, "x", release);
                        let got = evaluate(&DynHost::for_stream(std::ptr::null_mut()), &expr);
                        got == Ok(CelValue::Int(n.into()))
                    })
                })
            })
            .collect();
        for t in threads {
            assert!(t.join().unwrap_or(false));
        }
        let programs = PROGRAMS.lock().unwrap_or_else(PoisonError::into_inner);
        assert!(programs.iter().all(Option::is_none), "every token released");
    }
}
