//! Checks on the parsed block that the type system cannot make: every tool documented, names
//! that follow the MCP tool-name rule and are unique, plain synchronous functions with a
//! declared result, annotations that agree with each other, argument bounds that leave some
//! value allowed. Whether a bound fits the argument's type is left to the trait bounds of the
//! generated checks (`RangeArg`, `CharsArg`, `ItemsArg`), which report it at the key.

use quote::ToTokens;

use crate::ast::{Arg, Block, Param, Tool};
use crate::attr;
use crate::ctxt::Ctxt;

/// The longest tool name the MCP specification allows.
const MAX_NAME_LEN: usize = 128;

/// Records every problem of `block` in `cx`.
pub fn check(cx: &mut Ctxt, block: &Block) {
    for (i, tool) in block.tools.iter().enumerate() {
        check_name(cx, tool);
        if block.tools[..i]
            .iter()
            .any(|earlier| earlier.name == tool.name)
        {
            cx.error_spanned_by(
                name_tokens(tool),
                format_args!(
                    "duplicate tool name `{}`: each tool needs its own name",
                    tool.name
                ),
            );
        }
        check_signature(cx, tool);
        for param in &tool.params {
            if let Param::Arg(arg) = param {
                check_bounds(cx, arg);
            }
        }
        if tool.doc.is_none() {
            cx.error_spanned_by(
                &tool.func.sig.ident,
                format_args!(
                    "tool `{}` needs a doc comment: it becomes the description the model reads",
                    tool.name
                ),
            );
        }
        if tool.attrs.read_only && tool.attrs.destructive {
            cx.error_spanned_by(
                &tool.func.sig.ident,
                "a tool cannot be both `read_only` and `destructive`",
            );
        }
        if tool.attrs.read_only && tool.attrs.mostly_reads {
            cx.error_spanned_by(
                &tool.func.sig.ident,
                "`mostly_reads` is for a tool that writes now and then; a `read_only` tool \
                 never writes: keep one of the two",
            );
        }
    }
}

fn name_tokens(tool: &Tool) -> proc_macro2::TokenStream {
    match &tool.attrs.name {
        Some(lit) => lit.to_token_stream(),
        None => tool.func.sig.ident.to_token_stream(),
    }
}

// MCP: 1 to 128 characters from A-Z, a-z, 0-9, `_`, `-` and `.`.
fn check_name(cx: &mut Ctxt, tool: &Tool) {
    let name = &tool.name;
    let bad = name
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.')));
    let problem = if name.is_empty() {
        Some("is empty".to_string())
    } else if name.len() > MAX_NAME_LEN {
        Some(format!(
            "is {} characters long, over the limit of {MAX_NAME_LEN}",
            name.len()
        ))
    } else {
        bad.map(|c| format!("contains {c:?}"))
    };
    if let Some(problem) = problem {
        cx.error_spanned_by(
            name_tokens(tool),
            format_args!("tool name `{name}` {problem}: MCP tool names are 1 to {MAX_NAME_LEN} characters from A-Z, a-z, 0-9, `_`, `-` and `.`"),
        );
    }
}

// A range with no value in it, a limit of zero, or a literal default the range refuses would
// make every call (or every call without the argument) fail.
fn check_bounds(cx: &mut Ctxt, arg: &Arg) {
    if let Some(range) = &arg.attrs.range {
        if let Some(end) = range.end.filter(|end| *end < range.start) {
            cx.error_spanned_by(
                &range.tokens,
                format_args!(
                    "empty range: no value is both {} or more and {end} or less; write \
                     `low..=high`",
                    range.start
                ),
            );
        } else if let Some((_, default)) = &arg.attrs.default
            && let Ok(value) = attr::integer(default)
            && (value < range.start || range.end.is_some_and(|end| value > end))
        {
            cx.error_spanned_by(
                default,
                format_args!("the default {value} is outside the argument's `range`"),
            );
        }
    }
    for limit in [&arg.attrs.max_chars, &arg.attrs.max_items]
        .into_iter()
        .flatten()
    {
        if limit.value == 0 {
            cx.error_spanned_by(
                &limit.lit,
                "a limit of 0 allows only an empty value: give 1 or more",
            );
        }
    }
}

fn check_signature(cx: &mut Ctxt, tool: &Tool) {
    let sig = &tool.func.sig;
    if let Some(token) = &sig.asyncness {
        cx.error_spanned_by(token, "tool bodies are synchronous: remove `async` (the dispatcher runs them off the async runtime)");
    }
    if let Some(token) = &sig.constness {
        cx.error_spanned_by(token, "a tool cannot be a `const fn`");
    }
    if let syn::Safety::Unsafe(token) = &sig.safety {
        cx.error_spanned_by(token, "a tool cannot be `unsafe`");
    }
    if let Some(abi) = &sig.abi {
        cx.error_spanned_by(abi, "a tool cannot declare an ABI");
    }
    if !sig.generics.params.is_empty() || sig.generics.where_clause.is_some() {
        cx.error_spanned_by(
            &sig.generics,
            "a tool cannot be generic: its arguments need concrete types for the JSON Schema",
        );
    }
    if let Some(variadic) = &sig.variadic {
        cx.error_spanned_by(variadic, "a tool cannot be variadic");
    }
    if tool.output.is_none() {
        cx.error_spanned_by(
            &sig.ident,
            format_args!(
                "tool `{}` must return `Result<T, E>` (T becomes the result's JSON)",
                tool.name
            ),
        );
    }
}
