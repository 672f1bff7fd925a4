//! The macro's own view of the input: the `impl` block as a list of tools, each with its name,
//! doc comment, attributes and parameters sorted into context (taken by reference) and
//! arguments (taken by value). Every node keeps a reference to the tokens it came from, so
//! later errors point at them.

use syn::{FnArg, ImplItem, ImplItemFn, ItemImpl, Pat, ReturnType, Type};

use crate::attr::{self, ArgAttrs, ToolAttrs};
use crate::ctxt::Ctxt;

/// The annotated `impl` block.
pub struct Block<'a> {
    /// The type the block implements (`Tools`).
    pub self_ty: &'a Type,
    /// The tool functions, in source order.
    pub tools: Vec<Tool<'a>>,
}

/// One tool function.
pub struct Tool<'a> {
    /// The function as written.
    pub func: &'a ImplItemFn,
    /// The MCP name: `#[tool(name)]` or the function name.
    pub name: String,
    /// The doc comment, if any.
    pub doc: Option<String>,
    /// What `#[tool(..)]` said.
    pub attrs: ToolAttrs,
    /// The parameters, in signature order.
    pub params: Vec<Param<'a>>,
    /// The return type, if the function declares one.
    pub output: Option<&'a Type>,
}

/// One parameter of a tool function.
pub enum Param<'a> {
    /// `x: &T`: context the dispatcher provides; `T` is the referenced type.
    Context(&'a Type),
    /// `x: T`: an argument decoded from the call's JSON.
    Arg(Arg<'a>),
}

/// An argument parameter.
pub struct Arg<'a> {
    /// The parameter's name, which is the argument's JSON name.
    pub ident: &'a syn::Ident,
    /// Its type.
    pub ty: &'a Type,
    /// What `#[arg(..)]` said.
    pub attrs: ArgAttrs,
}

impl<'a> Block<'a> {
    /// Reads the block; shapes the macro cannot work with are recorded in `cx` and skipped.
    pub fn from_syn(cx: &mut Ctxt, item: &'a ItemImpl) -> Self {
        if let Some((path, _)) = &item.trait_ {
            cx.error_spanned_by(
                path,
                "#[tools] goes on an inherent impl block (`impl Tools { .. }`), not a trait impl",
            );
        }
        if !item.generics.params.is_empty() {
            cx.error_spanned_by(&item.generics, "#[tools] blocks cannot be generic");
        }
        let tools = item
            .items
            .iter()
            .filter_map(|i| match i {
                ImplItem::Fn(func) => Some(Tool::from_syn(cx, func)),
                _ => None,
            })
            .collect();
        Block {
            self_ty: &item.self_ty,
            tools,
        }
    }
}

impl<'a> Tool<'a> {
    fn from_syn(cx: &mut Ctxt, func: &'a ImplItemFn) -> Self {
        let attrs = attr::tool_attrs(cx, &func.attrs);
        let name = match &attrs.name {
            Some(lit) => lit.value(),
            None => func.sig.ident.unraw_string(),
        };
        let params = func
            .sig
            .inputs
            .iter()
            .filter_map(|input| Param::from_syn(cx, input))
            .collect();
        let output = match &func.sig.output {
            ReturnType::Type(_, ty) => Some(&**ty),
            ReturnType::Default => None,
        };
        Tool {
            func,
            name,
            doc: attr::doc(&func.attrs),
            attrs,
            params,
            output,
        }
    }
}

impl<'a> Param<'a> {
    fn from_syn(cx: &mut Ctxt, input: &'a FnArg) -> Option<Self> {
        let typed = match input {
            FnArg::Receiver(receiver) => {
                cx.error_spanned_by(receiver, "tool functions take no `self`: take context by reference instead, e.g. `db: &Connection`");
                return None;
            }
            FnArg::Typed(typed) => typed,
        };
        let attrs = attr::arg_attrs(cx, &typed.attrs);
        if let Type::Reference(reference) = &*typed.ty {
            if let Some(mutability) = &reference.mutability {
                cx.error_spanned_by(
                    mutability,
                    "context is shared: take it as `&T`, not `&mut T`",
                );
            }
            if let Some((span, _)) = &attrs.default {
                cx.syn_error(syn::Error::new(*span, "#[arg] belongs on arguments (taken by value), not on context taken by reference"));
            } else if let Some(desc) = &attrs.desc {
                cx.error_spanned_by(desc, "#[arg] belongs on arguments (taken by value), not on context taken by reference");
            } else if let Some(negate) = &attrs.negate {
                cx.error_spanned_by(negate, "#[arg] belongs on arguments (taken by value), not on context taken by reference");
            }
            return Some(Param::Context(&reference.elem));
        }
        if let Type::ImplTrait(_) = &*typed.ty {
            cx.error_spanned_by(&typed.ty, "unsupported parameter type: a tool argument needs a concrete type, such as `String` or `Option<u32>`");
            return None;
        }
        match &*typed.pat {
            Pat::Ident(pat) if pat.by_ref.is_none() && pat.subpat.is_none() => {
                Some(Param::Arg(Arg {
                    ident: &pat.ident,
                    ty: &typed.ty,
                    attrs,
                }))
            }
            other => {
                cx.error_spanned_by(
                    other,
                    "a tool argument needs a plain name, which becomes its JSON name",
                );
                None
            }
        }
    }
}

/// `Ident::unraw` as a string, without pulling in syn's `ext` module for one call.
trait UnrawString {
    fn unraw_string(&self) -> String;
}

impl UnrawString for syn::Ident {
    fn unraw_string(&self) -> String {
        let s = self.to_string();
        s.strip_prefix("r#").map(str::to_string).unwrap_or(s)
    }
}
