//! The 404 page.

use leptos::prelude::*;
use leptos_meta::Title;

/// Rendered for any path no route matches, with a real 404 status on the server.
#[component]
pub fn NotFound() -> impl IntoView {
    #[cfg(feature = "ssr")]
    {
        if let Some(response) = use_context::<leptos_axum::ResponseOptions>() {
            response.set_status(http::StatusCode::NOT_FOUND);
        }
    }
    view! {
        <Title text="Not found" />
        <main class="page-message">
            <h1>"404 · Not found"</h1>
            <p>"There is nothing at this address."</p>
            <p>
                <a href="/">"Back to Codepod"</a>
            </p>
        </main>
    }
}
