//! Code generation: the block as written (minus the macro's own attributes), one hidden
//! companion per tool (argument schema, defaults, call wrapper) and the `ToolSet` impl that
//! lists them. On error it emits the errors together with the cleaned block, so that editors
//! and the rest of the crate keep working.

use proc_macro2::{Ident, Span, TokenStream};
use quote::{format_ident, quote, quote_spanned};
use syn::spanned::Spanned;
use syn::{ImplItem, ItemImpl};

use crate::ast::{Arg, Block, Param, Tool};
use crate::attr;
use crate::ctxt::Ctxt;
use crate::valid;

/// The whole macro: parse -> validate -> expand.
pub fn tools(args: TokenStream, input: TokenStream) -> TokenStream {
    let item: ItemImpl = match syn::parse2(input.clone()) {
        Ok(item) => item,
        Err(e) => {
            let error = syn::Error::new(
                e.span(),
                "#[tools] goes on an impl block of tool functions: `impl Tools { .. }`",
            );
            let error = error.to_compile_error();
            return quote!(#error #input);
        }
    };
    let mut cx = Ctxt::default();
    if !args.is_empty() {
        cx.error_spanned_by(
            &args,
            "#[tools] takes no arguments; put annotations on each function as #[tool(..)]",
        );
    }
    let block = Block::from_syn(&mut cx, &item);
    valid::check(&mut cx, &block);
    let cleaned = strip_own_attrs(&item);
    match cx.check() {
        Ok(()) => {
            let registry = registry(&block);
            quote!(#cleaned #registry)
        }
        Err(errors) => {
            let errors = errors.to_compile_error();
            let self_ty = &item.self_ty;
            // An empty registry keeps code that uses the block from failing as well.
            quote! {
                #errors
                #cleaned
                impl ::c2c_server::registry::ToolSet for #self_ty {
                    const TOOLS: &'static [::c2c_server::registry::ToolDef] = &[];
                }
            }
        }
    }
}

/// The block with `#[tool]` and `#[arg]` removed, which rustc would not know.
fn strip_own_attrs(item: &ItemImpl) -> ItemImpl {
    let mut item = item.clone();
    for member in &mut item.items {
        if let ImplItem::Fn(func) = member {
            func.attrs.retain(|a| !attr::is_ours(a));
            for input in &mut func.sig.inputs {
                if let syn::FnArg::Typed(typed) = input {
                    typed.attrs.retain(|a| !attr::is_ours(a));
                }
            }
        }
    }
    item
}

fn registry(block: &Block) -> TokenStream {
    let self_ty = block.self_ty;
    let companions = block.tools.iter().map(companion);
    let defs = block.tools.iter().map(tool_def);
    let negate_checks = block.tools.iter().flat_map(args).filter_map(negate_check);
    quote! {
        #(#negate_checks)*

        #[doc(hidden)]
        #[allow(non_snake_case, clippy::all)]
        impl #self_ty {
            #(#companions)*
        }

        impl ::c2c_server::registry::ToolSet for #self_ty {
            const TOOLS: &'static [::c2c_server::registry::ToolDef] = &[#(#defs),*];
        }
    }
}

/// For an argument with `negate`, a check that its type is `bool` (or `Option<bool>`): the
/// flag sets it to false. Left to the compiler, which knows the type behind an alias, rather
/// than read from the type's name.
fn negate_check(arg: &Arg) -> Option<TokenStream> {
    arg.attrs.negate.as_ref()?;
    let ty = arg.ty;
    Some(quote_spanned! {ty.span()=>
        const _: () = {
            #[diagnostic::on_unimplemented(
                message = "`negate` is for a `bool` argument, and this one is `{Self}`",
                label = "not `bool`",
                note = "`#[arg(negate = \"..\")]` names a command-line flag that sets a boolean \
                        argument to false: remove it, or make the argument a `bool`"
            )]
            trait NegateNeedsBool {}
            impl NegateNeedsBool for bool {}
            impl NegateNeedsBool for ::core::option::Option<bool> {}
            const fn negatable<T: NegateNeedsBool>() {}
            negatable::<#ty>()
        };
    })
}

/// The hidden name of a companion function of `tool`.
fn hidden(tool: &Tool, what: &str) -> Ident {
    format_ident!("__c2c_{}__{}", what, tool.func.sig.ident)
}

fn default_fn(tool: &Tool, arg: &Arg) -> Ident {
    format_ident!("__c2c_default__{}__{}", tool.func.sig.ident, arg.ident)
}

fn default_json_fn(tool: &Tool, arg: &Arg) -> Ident {
    format_ident!("__c2c_default_json__{}__{}", tool.func.sig.ident, arg.ident)
}

fn json_name(arg: &Arg) -> String {
    let s = arg.ident.to_string();
    s.strip_prefix("r#").map(str::to_string).unwrap_or(s)
}

fn args<'t, 'a>(tool: &'t Tool<'a>) -> impl Iterator<Item = &'t Arg<'a>> {
    tool.params.iter().filter_map(|p| match p {
        Param::Arg(arg) => Some(arg),
        Param::Context(_) => None,
    })
}

/// The functions behind one tool: argument schema, defaults, output schema, call wrapper.
fn companion(tool: &Tool) -> TokenStream {
    let private = quote!(::c2c_server::__private);
    let registry = quote!(::c2c_server::registry);
    let body_fn = &tool.func.sig.ident;
    let input_fn = hidden(tool, "input");
    let output_fn = hidden(tool, "output");
    let call_fn = hidden(tool, "call");
    let output = tool.output.expect("validated: tools declare a return type");

    let fields = args(tool).map(|arg| {
        let ident = arg.ident;
        let ty = arg.ty;
        let doc = arg.attrs.desc.iter();
        quote!(#(#[doc = #doc])* #ident: #ty)
    });
    let defaults = args(tool).filter_map(|arg| {
        let (_, expr) = arg.attrs.default.as_ref()?;
        let ty = arg.ty;
        let name = default_fn(tool, arg);
        let json_name = default_json_fn(tool, arg);
        // A string literal default stands for an owned String, as arguments are owned.
        let value = match expr {
            syn::Expr::Lit(syn::ExprLit {
                lit: syn::Lit::Str(_),
                ..
            }) => {
                quote_spanned!(expr.span()=> ::std::borrow::ToOwned::to_owned(#expr))
            }
            _ => quote!(#expr),
        };
        Some(quote! {
            fn #name() -> #ty { #value }
            fn #json_name() -> #private::serde_json::Value {
                #private::serde_json::to_value(Self::#name())
                    .expect("a tool argument's default serialises to JSON")
            }
        })
    });
    let valid: Vec<String> = args(tool).map(json_name).collect();
    let decode = args(tool).map(|arg| {
        let ident = arg.ident;
        let ty = arg.ty;
        let name = json_name(arg);
        let default = match arg.attrs.default {
            Some(_) => {
                let f = default_fn(tool, arg);
                quote!(::core::option::Option::Some(Self::#f as fn() -> #ty))
            }
            None => quote!(::core::option::Option::None),
        };
        let decode = quote_spanned! {ty.span()=>
            let #ident: #ty = #registry::take_arg::<#ty>(&mut __c2c_args, #name, #default)?;
        };
        let bounds = bound_checks(arg);
        quote!(#decode #bounds)
    });
    let call_args: Vec<TokenStream> = tool
        .params
        .iter()
        .map(|param| match param {
            Param::Arg(arg) => {
                let ident = arg.ident;
                quote!(#ident)
            }
            Param::Context(ty) => {
                quote_spanned!(ty.span()=> <#ty as #registry::FromCall>::from_call(__c2c_call)?)
            }
        })
        .collect();
    let output_ok = quote_spanned!(output.span()=> <#output as #registry::ToolOutput>::Ok);
    let schemars_crate = quote!(::c2c_server::__private::schemars).to_string();
    quote! {
        fn #input_fn() -> #registry::JsonObject {
            #[derive(#private::schemars::JsonSchema)]
            #[schemars(crate = #schemars_crate, deny_unknown_fields)]
            #[allow(dead_code, non_camel_case_types)]
            struct __C2cArgs { #(#fields,)* }
            #registry::schema_for::<__C2cArgs>()
        }
        fn #output_fn() -> #registry::JsonObject {
            #registry::output_schema_for::<#output_ok>()
        }
        #(#defaults)*
        fn #call_fn(
            __c2c_call: &::c2c_server::call::Call<'_>,
            mut __c2c_args: #registry::JsonObject,
        ) -> ::core::result::Result<#private::serde_json::Value, ::c2c_server::error::ToolError> {
            #registry::reject_unknown(&__c2c_args, &[#(#valid),*])?;
            #(#decode)*
            #registry::into_json(Self::#body_fn(#(#call_args),*))
        }
    }
}

/// The checks of an argument's declared bounds, run right after it is decoded. Each passes the
/// value through a trait (`RangeArg`, `CharsArg`, `ItemsArg`) at the span of its key, so that a
/// bound on an argument of the wrong type is a compile error pointing at the key.
fn bound_checks(arg: &Arg) -> TokenStream {
    let registry = quote!(::c2c_server::registry);
    let name = json_name(arg);
    let at = |key: Span| {
        let mut ident = arg.ident.clone();
        ident.set_span(key);
        ident
    };
    let mut checks = TokenStream::new();
    if let Some(range) = &arg.attrs.range {
        let value = at(range.key);
        let start = range.start;
        let end = option(range.end.map(|end| quote!(#end)));
        checks.extend(quote_spanned! {range.key=>
            #registry::check_range(#name, &#value, #start, #end)?;
        });
    }
    if let Some(limit) = &arg.attrs.max_chars {
        let value = at(limit.key);
        let max = limit.value;
        checks.extend(quote_spanned! {limit.key=>
            #registry::check_chars(#name, &#value, #max)?;
        });
    }
    if let Some(limit) = &arg.attrs.max_items {
        let value = at(limit.key);
        let max = limit.value;
        checks.extend(quote_spanned! {limit.key=>
            #registry::check_items(#name, &#value, #max)?;
        });
    }
    checks
}

/// `Some(tokens)` or `None`, as Rust tokens.
fn option(tokens: Option<TokenStream>) -> TokenStream {
    match tokens {
        Some(tokens) => quote!(::core::option::Option::Some(#tokens)),
        None => quote!(::core::option::Option::None),
    }
}

/// The `ToolDef` literal of one tool.
fn tool_def(tool: &Tool) -> TokenStream {
    let registry = quote!(::c2c_server::registry);
    let name = &tool.name;
    let description = tool.doc.as_deref().unwrap_or_default();
    let read_only = tool.attrs.read_only;
    let destructive = tool.attrs.destructive;
    let idempotent = tool.attrs.idempotent;
    let heartbeat = !tool.attrs.no_heartbeat;
    let mostly_reads = tool.attrs.mostly_reads;
    let needs_session = tool.params.iter().filter_map(|p| match p {
        Param::Context(ty) => {
            Some(quote_spanned!(ty.span()=> || <#ty as #registry::FromCall>::NEEDS_SESSION))
        }
        Param::Arg(_) => None,
    });
    let arg_defs = args(tool).map(|arg| {
        let name = json_name(arg);
        let ty = arg.ty;
        let description = arg
            .attrs
            .desc
            .as_ref()
            .map(|d| d.value())
            .unwrap_or_default();
        let negate = match &arg.attrs.negate {
            Some(flag) => quote!(::core::option::Option::Some(#flag)),
            None => quote!(::core::option::Option::None),
        };
        let default = match arg.attrs.default {
            Some(_) => {
                let f = default_json_fn(tool, arg);
                quote!(::core::option::Option::Some(Self::#f))
            }
            None => quote!(::core::option::Option::None),
        };
        let bounds = &arg.attrs;
        let min = option(bounds.range.as_ref().map(|r| {
            let start = r.start;
            quote!(#start)
        }));
        let max = option(
            bounds
                .range
                .as_ref()
                .and_then(|r| r.end)
                .map(|end| quote!(#end)),
        );
        let max_chars = option(bounds.max_chars.as_ref().map(|l| {
            let value = l.value;
            quote!(#value)
        }));
        let max_items = option(bounds.max_items.as_ref().map(|l| {
            let value = l.value;
            quote!(#value)
        }));
        quote_spanned! {ty.span()=>
            #registry::ArgDef {
                name: #name,
                description: #description,
                kind: <#ty as #registry::ToolArg>::kind,
                nullable: <#ty as #registry::ToolArg>::NULLABLE,
                default: #default,
                negate: #negate,
                min: #min,
                max: #max,
                max_chars: #max_chars,
                max_items: #max_items,
            }
        }
    });
    let input_fn = hidden(tool, "input");
    let output_fn = hidden(tool, "output");
    let call_fn = hidden(tool, "call");
    let span = Span::call_site();
    quote_spanned! {span=>
        #registry::ToolDef {
            name: #name,
            description: #description,
            read_only: #read_only,
            destructive: #destructive,
            idempotent: #idempotent,
            heartbeat: #heartbeat,
            mostly_reads: #mostly_reads,
            needs_session: false #(#needs_session)*,
            args: &[#(#arg_defs),*],
            raw_input_schema: Self::#input_fn,
            output_schema: Self::#output_fn,
            call: Self::#call_fn,
        }
    }
}
