//! A value that only the browser holds.
//!
//! Components keep browser-side handles (a dispatcher into the editor, the terminal client)
//! that are not `Send`. `StoredValue::new_local` would also create them during server-side
//! rendering, where the reactive owner is dropped on whichever thread finishes the response
//! stream — and dropping a thread-local value from another thread panics mid-response. On
//! the server this slot holds nothing at all.

#[cfg(feature = "hydrate")]
use leptos::prelude::*;

pub struct BrowserSlot<T: 'static> {
    #[cfg(feature = "hydrate")]
    inner: StoredValue<Option<T>, LocalStorage>,
    #[cfg(not(feature = "hydrate"))]
    _nothing: std::marker::PhantomData<fn() -> T>,
}

impl<T: 'static> Clone for BrowserSlot<T> {
    fn clone(&self) -> Self {
        *self
    }
}

impl<T: 'static> Copy for BrowserSlot<T> {}

impl<T: 'static> Default for BrowserSlot<T> {
    fn default() -> Self {
        Self::new()
    }
}

impl<T: 'static> BrowserSlot<T> {
    pub fn new() -> Self {
        Self {
            #[cfg(feature = "hydrate")]
            inner: StoredValue::new_local(None),
            #[cfg(not(feature = "hydrate"))]
            _nothing: std::marker::PhantomData,
        }
    }

    /// Puts a value in (the browser) or drops it (the server).
    #[cfg_attr(not(feature = "hydrate"), allow(dead_code))]
    pub fn set(&self, value: Option<T>) {
        #[cfg(feature = "hydrate")]
        self.inner.set_value(value);
        #[cfg(not(feature = "hydrate"))]
        drop(value);
    }

    /// Runs `f` with the value, if there is one (never on the server).
    pub fn with<R>(&self, f: impl FnOnce(Option<&T>) -> R) -> R
    where
        T: Clone,
    {
        #[cfg(feature = "hydrate")]
        {
            let value = self.inner.try_get_value().flatten();
            f(value.as_ref())
        }
        #[cfg(not(feature = "hydrate"))]
        {
            f(None)
        }
    }
}
