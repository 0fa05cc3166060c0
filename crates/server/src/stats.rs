//! Counters of a server's live state ([`crate::SocketIo::stats`]), for monitoring and for the
//! leak checks of the soak suite.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

/// A snapshot of what a server holds, from [`crate::SocketIo::stats`]. Each field is read on
/// its own (not one atomic snapshot), so under traffic they may disagree by a few.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct ServerStats {
    /// Open Engine.IO sessions (as [`crate::SocketIo::connection_count`]).
    pub sessions: usize,
    /// Sessions whose polling GET is held, waiting for data.
    pub polls_waiting: usize,
    /// Connections and sockets not yet closed: what [`crate::SocketIo::close`] waits for.
    pub live: usize,
    /// Namespaces, static ones and current children of dynamic ones.
    pub namespaces: usize,
    /// Connected sockets, summed over namespaces.
    pub sockets: usize,
    /// Rooms with at least one socket, summed over namespaces.
    pub rooms: usize,
    /// Acknowledgements the server waits for from clients, summed over sockets (entries past
    /// their deadline count until they are swept).
    pub pending_acks: usize,
    /// Connections holding a binary packet whose attachments have not all arrived.
    pub partial_packets: usize,
    /// Event and ack packets encoded since the server started (each emit, broadcast and ack
    /// answer of this server's API is encoded once, whatever its number of targets; packets
    /// from other servers of a cluster are not counted).
    pub packets_encoded: u64,
    /// Partial packets dropped since the server started (attachments too late, or the
    /// connection closed while they were awaited).
    pub dropped_partials: u64,
}

/// The counters kept by the connections themselves.
#[derive(Debug, Default)]
pub(crate) struct Counters {
    partial_packets: AtomicUsize,
    dropped_partials: AtomicU64,
    packets_encoded: AtomicU64,
}

impl Counters {
    pub(crate) fn count_encoded(&self) {
        self.packets_encoded.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn packets_encoded(&self) -> u64 {
        self.packets_encoded.load(Ordering::Relaxed)
    }

    pub(crate) fn partial_packets(&self) -> usize {
        self.partial_packets.load(Ordering::Relaxed)
    }

    pub(crate) fn dropped_partials(&self) -> u64 {
        self.dropped_partials.load(Ordering::Relaxed)
    }
}

/// A connection's share of [`Counters`]: whether its decoder holds a partial packet, and the
/// drops already counted. Dropping it (the connection closed) settles both.
#[derive(Debug)]
pub(crate) struct PartialGauge {
    counters: Arc<Counters>,
    pending: bool,
    dropped: u64,
}

impl PartialGauge {
    pub(crate) fn new(counters: Arc<Counters>) -> Self {
        PartialGauge {
            counters,
            pending: false,
            dropped: 0,
        }
    }

    /// Brings the counters up to date with the decoder's state.
    pub(crate) fn update(&mut self, pending: bool, dropped: u64) {
        if pending != self.pending {
            if pending {
                self.counters
                    .partial_packets
                    .fetch_add(1, Ordering::Relaxed);
            } else {
                self.counters
                    .partial_packets
                    .fetch_sub(1, Ordering::Relaxed);
            }
            self.pending = pending;
        }
        if dropped > self.dropped {
            self.counters
                .dropped_partials
                .fetch_add(dropped - self.dropped, Ordering::Relaxed);
            self.dropped = dropped;
        }
    }
}

impl Drop for PartialGauge {
    fn drop(&mut self) {
        if self.pending {
            // The connection closed with attachments awaited: the packet is dropped.
            self.update(false, self.dropped + 1);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gauge_counts_pending_and_settles_on_drop() {
        let counters = Arc::new(Counters::default());
        let mut a = PartialGauge::new(counters.clone());
        let mut b = PartialGauge::new(counters.clone());
        a.update(true, 0);
        b.update(true, 0);
        assert_eq!(counters.partial_packets(), 2);
        // a's attachments came too late: dropped by the decoder.
        a.update(false, 1);
        assert_eq!(counters.partial_packets(), 1);
        assert_eq!(counters.dropped_partials(), 1);
        // b's connection closes while it waits.
        drop(b);
        assert_eq!(counters.partial_packets(), 0);
        assert_eq!(counters.dropped_partials(), 2);
        drop(a);
        assert_eq!(counters.partial_packets(), 0);
        assert_eq!(counters.dropped_partials(), 2);
    }
}
