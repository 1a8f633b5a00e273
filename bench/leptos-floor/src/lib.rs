//! A minimal Leptos app: a router with two routes (one with a parameter) and `<A>` links, a
//! `<Title>`, one resource in a `<Suspense>`, a `<For>` list, an action, a signal-driven button
//! and two server functions. Hydrated only; never served.

use leptos::prelude::*;
use leptos_meta::*;
use leptos_router::{StaticSegment, components::*, hooks::use_params_map, path};
use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct Item {
    pub id: u32,
    pub name: String,
    pub done: bool,
}

#[server(prefix = "/api", endpoint = "items")]
pub async fn items() -> Result<Vec<Item>, ServerFnError> {
    Ok(vec![])
}

#[server(prefix = "/api", endpoint = "rename")]
pub async fn rename(id: u32, name: String) -> Result<Item, ServerFnError> {
    Ok(Item {
        id,
        name,
        done: false,
    })
}

#[component]
fn Home() -> impl IntoView {
    let list = Resource::new(|| (), |_| items());
    let count = RwSignal::new(0);
    let act = Action::new(|(id, name): &(u32, String)| rename(*id, name.clone()));
    view! {
        <Title text="Home"/>
        <h1>"Items"</h1>
        <button on:click=move |_| count.update(|c| *c += 1)>{move || count.get()}</button>
        <button on:click=move |_| { act.dispatch((1, "x".into())); }>"rename"</button>
        <Suspense fallback=|| view! { <p>"Loading"</p> }>
            {move || list.get().map(|r| match r {
                Ok(v) => view! { <ul><For each=move || v.clone() key=|i| i.id let:i><li class:done=i.done><A href=format!("/item/{}", i.id)>{i.name}</A></li></For></ul> }.into_any(),
                Err(e) => view! { <p>{e.to_string()}</p> }.into_any(),
            })}
        </Suspense>
    }
}

#[component]
fn ItemPage() -> impl IntoView {
    let params = use_params_map();
    view! { <p>{move || params.read().get("id").unwrap_or_default()}</p> }
}

#[component]
pub fn App() -> impl IntoView {
    provide_meta_context();
    view! {
        <Router>
            <Routes fallback=|| "Not found">
                <Route path=StaticSegment("") view=Home/>
                <Route path=path!("/item/:id") view=ItemPage/>
            </Routes>
        </Router>
    }
}

#[wasm_bindgen::prelude::wasm_bindgen]
pub fn hydrate() {
    leptos::mount::hydrate_body(App);
}
