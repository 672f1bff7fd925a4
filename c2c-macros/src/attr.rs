//! Parsing of the macro's own attributes, `#[tool(..)]` on a function and `#[arg(..)]` on a
//! parameter, into plain structs that keep the tokens for later error spans. Unknown and
//! repeated keys are reported with the list of valid ones.

use proc_macro2::{Span, TokenStream};
use quote::ToTokens;
use syn::meta::ParseNestedMeta;
use syn::{Attribute, Expr, LitInt, LitStr};

use crate::ctxt::Ctxt;
use crate::symbol::{
    self, ARG, DEFAULT, DESC, DESTRUCTIVE, IDEMPOTENT, MAX_CHARS, MOSTLY_READS, NAME, NEGATE,
    RANGE, READ_ONLY, TOOL,
};

/// What `#[tool(..)]` said about a function.
#[derive(Default)]
pub struct ToolAttrs {
    /// `read_only`
    pub read_only: bool,
    /// `destructive`
    pub destructive: bool,
    /// `idempotent`
    pub idempotent: bool,
    /// `no_heartbeat`
    pub no_heartbeat: bool,
    /// `mostly_reads`
    pub mostly_reads: bool,
    /// `name = ".."`
    pub name: Option<LitStr>,
}

/// What `#[arg(..)]` said about a parameter.
#[derive(Default)]
pub struct ArgAttrs {
    /// `default = <expr>`, with the span of the key for errors.
    pub default: Option<(Span, Expr)>,
    /// `desc = ".."`
    pub desc: Option<LitStr>,
    /// `negate = ".."`
    pub negate: Option<LitStr>,
    /// `range = A..=B` or `range = A..`
    pub range: Option<Range>,
    /// `max_chars = N`
    pub max_chars: Option<Limit>,
    /// `max_items = N`
    pub max_items: Option<Limit>,
    /// The first key given, for errors about the attribute as a whole.
    pub first_key: Option<Span>,
}

/// The values an integer argument may take, from `range = A..=B` or `range = A..`.
pub struct Range {
    /// The key, where a type mismatch is reported.
    pub key: Span,
    /// The range as written, for errors.
    pub tokens: TokenStream,
    /// The lowest value allowed.
    pub start: i64,
    /// The highest value allowed; `None` for `A..`.
    pub end: Option<i64>,
}

/// A count from `max_chars = N` or `max_items = N`.
pub struct Limit {
    /// The key, where a type mismatch is reported.
    pub key: Span,
    /// The number as written.
    pub lit: LitInt,
    /// Its value.
    pub value: usize,
}

/// Whether `attr` is one of the macro's own attributes (which it strips from the output).
pub fn is_ours(attr: &Attribute) -> bool {
    attr.path().is_ident(TOOL) || attr.path().is_ident(ARG)
}

/// Reads every `#[tool(..)]` among `attrs`; a second `#[tool]` attribute is an error.
pub fn tool_attrs(cx: &mut Ctxt, attrs: &[Attribute]) -> ToolAttrs {
    let mut out = ToolAttrs::default();
    for_each_key(cx, attrs, TOOL, symbol::TOOL_KEYS, |key, meta| {
        match key {
            // #[tool(name = "send-message")]
            NAME => out.name = Some(meta.value()?.parse()?),
            // #[tool(read_only)], #[tool(destructive)], ...
            _ => {
                if meta.input.peek(syn::Token![=]) {
                    return Err(meta.error(format_args!(
                        "`{key}` is a flag: write #[tool({key})] without a value"
                    )));
                }
                match key {
                    READ_ONLY => out.read_only = true,
                    DESTRUCTIVE => out.destructive = true,
                    IDEMPOTENT => out.idempotent = true,
                    MOSTLY_READS => out.mostly_reads = true,
                    _ => out.no_heartbeat = true,
                }
            }
        }
        Ok(())
    });
    out
}

/// Reads every `#[arg(..)]` among `attrs`; a second `#[arg]` attribute is an error.
pub fn arg_attrs(cx: &mut Ctxt, attrs: &[Attribute]) -> ArgAttrs {
    let mut out = ArgAttrs::default();
    for_each_key(cx, attrs, ARG, symbol::ARG_KEYS, |key, meta| {
        let key_span = meta
            .path
            .get_ident()
            .map_or_else(Span::call_site, |i| i.span());
        out.first_key.get_or_insert(key_span);
        match key {
            // #[arg(default = 20)]
            DEFAULT => out.default = Some((key_span, meta.value()?.parse()?)),
            // #[arg(desc = "Most messages to return.")]
            DESC => out.desc = Some(meta.value()?.parse()?),
            // #[arg(negate = "all")]
            NEGATE => out.negate = Some(meta.value()?.parse()?),
            // #[arg(range = 1..=500)], #[arg(range = 0..)], #[arg(range = -5..=5)]
            RANGE => out.range = Some(range(key_span, meta.value()?.parse()?)?),
            // #[arg(max_chars = 64)]
            MAX_CHARS => out.max_chars = Some(limit(key, key_span, meta.value()?.parse()?)?),
            // #[arg(max_items = 1000)]
            _ => out.max_items = Some(limit(key, key_span, meta.value()?.parse()?)?),
        }
        Ok(())
    });
    out
}

// `A..=B` or `A..` with integer literals; whether it is empty is for `valid` to say.
fn range(key: Span, expr: Expr) -> syn::Result<Range> {
    const SYNTAX: &str = "`range` takes a range of integer literals: `range = 1..=500`, or \
                          `range = 0..` for no upper bound";
    let Expr::Range(r) = &expr else {
        return Err(syn::Error::new_spanned(&expr, SYNTAX));
    };
    let Some(start) = &r.start else {
        return Err(syn::Error::new_spanned(&expr, SYNTAX));
    };
    let start = integer(start)?;
    let end = match (&r.limits, &r.end) {
        (syn::RangeLimits::Closed(_), Some(end)) => Some(integer(end)?),
        (syn::RangeLimits::HalfOpen(_), None) => None,
        (syn::RangeLimits::HalfOpen(dots), Some(_)) => {
            return Err(syn::Error::new_spanned(
                dots,
                "`range` includes its upper bound: write `A..=B`",
            ));
        }
        (syn::RangeLimits::Closed(_), None) => {
            return Err(syn::Error::new_spanned(&expr, SYNTAX));
        }
    };
    Ok(Range {
        key,
        tokens: expr.into_token_stream(),
        start,
        end,
    })
}

/// An integer literal, possibly negated, that fits an i64.
pub fn integer(expr: &Expr) -> syn::Result<i64> {
    let (negative, lit) = match expr {
        Expr::Unary(syn::ExprUnary {
            op: syn::UnOp::Neg(_),
            expr: inner,
            ..
        }) => (true, &**inner),
        other => (false, other),
    };
    let Expr::Lit(syn::ExprLit {
        lit: syn::Lit::Int(lit),
        ..
    }) = lit
    else {
        return Err(syn::Error::new_spanned(
            expr,
            "a `range` bound must be an integer literal: the macro checks the range and writes \
             it into the input schema",
        ));
    };
    let magnitude: i128 = lit.base10_parse()?;
    i64::try_from(if negative { -magnitude } else { magnitude })
        .map_err(|_| syn::Error::new_spanned(expr, "a `range` bound must fit an i64"))
}

fn limit(key: &str, key_span: Span, expr: Expr) -> syn::Result<Limit> {
    let Expr::Lit(syn::ExprLit {
        lit: syn::Lit::Int(lit),
        ..
    }) = expr
    else {
        return Err(syn::Error::new_spanned(
            expr,
            format_args!(
                "`{key}` takes an integer literal, e.g. `{key} = 64`: the macro writes it into \
                 the input schema"
            ),
        ));
    };
    let value = lit.base10_parse()?;
    Ok(Limit {
        key: key_span,
        lit,
        value,
    })
}

// Walks the keys of the one `#[name(..)]` attribute among `attrs`, reporting a repeated
// attribute, unknown keys (with the valid ones) and repeated keys; `#[name]` alone has none.
fn for_each_key(
    cx: &mut Ctxt,
    attrs: &[Attribute],
    name: &str,
    valid: &[&'static str],
    mut each: impl FnMut(&'static str, &ParseNestedMeta) -> syn::Result<()>,
) {
    let mut seen: Vec<&'static str> = Vec::new();
    for (i, attr) in attrs.iter().filter(|a| a.path().is_ident(name)).enumerate() {
        if i > 0 {
            cx.error_spanned_by(
                attr,
                format_args!("duplicate #[{name}] attribute: put all keys in one"),
            );
            continue;
        }
        if matches!(attr.meta, syn::Meta::Path(_)) {
            continue;
        }
        let result = attr.parse_nested_meta(|meta| {
            let found = meta.path.get_ident().map(|i| i.to_string());
            let Some(key) = valid.iter().find(|k| found.as_deref() == Some(**k)) else {
                return Err(meta.error(format_args!(
                    "unknown key in #[{name}]: expected {}",
                    symbol::list(valid)
                )));
            };
            if seen.contains(key) {
                return Err(meta.error(format_args!("duplicate key `{key}` in #[{name}]")));
            }
            seen.push(key);
            each(key, &meta)
        });
        if let Err(e) = result {
            cx.syn_error(e);
        }
    }
}

/// The function's doc comment as one string, or `None` when there is none.
pub fn doc(attrs: &[Attribute]) -> Option<String> {
    let lines: Vec<String> = attrs
        .iter()
        .filter(|a| a.path().is_ident("doc"))
        .filter_map(|a| match &a.meta {
            syn::Meta::NameValue(nv) => match &nv.value {
                Expr::Lit(syn::ExprLit {
                    lit: syn::Lit::Str(s),
                    ..
                }) => Some(s.value()),
                _ => None,
            },
            _ => None,
        })
        .map(|line| {
            line.strip_prefix(' ')
                .unwrap_or(&line)
                .trim_end()
                .to_string()
        })
        .collect();
    let text = lines.join("\n").trim().to_string();
    (!text.is_empty()).then_some(text)
}
