//! Lists of listeners that can be added at either end and removed by id: the catch-all
//! listeners of a socket (`onAny`, `onAnyOutgoing`), the room events of a namespace and the
//! `new_namespace` listeners of a server.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};

/// Names a listener added with `on_any`, `prepend_any`, `on_any_outgoing`, `on_room_event`,
/// ..., to remove it later.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct ListenerId(u64);

impl ListenerId {
    fn next() -> Self {
        static NEXT: AtomicU64 = AtomicU64::new(1);
        ListenerId(NEXT.fetch_add(1, Ordering::Relaxed))
    }
}

/// An ordered list of listeners. Reading takes a snapshot (a reference count), so a listener
/// may add or remove listeners while it runs.
pub(crate) struct Listeners<H> {
    list: RwLock<Arc<Vec<(ListenerId, H)>>>,
}

impl<H> Default for Listeners<H> {
    fn default() -> Self {
        Listeners {
            list: RwLock::new(Arc::new(Vec::new())),
        }
    }
}

impl<H: Clone> Listeners<H> {
    /// Adds a listener after (or, with `prepend`, before) the others.
    pub(crate) fn add(&self, listener: H, prepend: bool) -> ListenerId {
        let id = ListenerId::next();
        let mut list = self.write();
        let mut next = Vec::with_capacity(list.len() + 1);
        if prepend {
            next.push((id, listener));
            next.extend(list.iter().cloned());
        } else {
            next.extend(list.iter().cloned());
            next.push((id, listener));
        }
        *list = Arc::new(next);
        id
    }

    /// Removes one listener, or every one with `None`.
    pub(crate) fn remove(&self, id: Option<ListenerId>) {
        let mut list = self.write();
        *list = match id {
            Some(id) => Arc::new(list.iter().filter(|(i, _)| *i != id).cloned().collect()),
            None => Arc::new(Vec::new()),
        };
    }

    /// The listeners now, in call order.
    pub(crate) fn snapshot(&self) -> Arc<Vec<(ListenerId, H)>> {
        self.list.read().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// Whether there is none.
    pub(crate) fn is_empty(&self) -> bool {
        self.list
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .is_empty()
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, Arc<Vec<(ListenerId, H)>>> {
        self.list.write().unwrap_or_else(|p| p.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn add_prepend_remove() {
        let l = Listeners::<&'static str>::default();
        assert!(l.is_empty());
        let a = l.add("a", false);
        let b = l.add("b", false);
        l.add("first", true);
        let names: Vec<_> = l.snapshot().iter().map(|(_, h)| *h).collect();
        assert_eq!(names, ["first", "a", "b"]);
        let before = l.snapshot();
        l.remove(Some(a));
        let names: Vec<_> = l.snapshot().iter().map(|(_, h)| *h).collect();
        assert_eq!(names, ["first", "b"]);
        assert_eq!(before.len(), 3, "a snapshot is not changed by a removal");
        assert_ne!(a, b);
        l.remove(None);
        assert!(l.is_empty());
    }
}
