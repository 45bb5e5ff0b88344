// App+Nodes: events committed by other nodes on the same PostgreSQL, delivered to this node's subscribers.
//
// Every node's store worker NOTIFYs `medic_events` "topic head" inside each committing transaction (PostgreSQL
// delivers it only if the commit happens, in commit order). This node's listener thread hears them — its own
// included — and hops to the loop: for a topic this node has subscribers on, the events after what the Hub
// already delivered are read from the store (one read per topic at a time) and published like local ones. The
// Hub drops seqs a subscriber already has and re-reads holes, so a notification that arrives before or after
// our own commit's completion, twice, or out of step with a replay delivers every seq exactly once, in order.
// LISTEN is not durable: after the listener reconnects (`.resync`) every followed topic's head is read from the
// store again and the cached heads are forgotten, so a notification lost in between never leaves a gap.
import EventLoop
import Hub
import Logging
import Server
import Store

extension App {
    /// Follows the other nodes' commits (PostgreSQL stores only; SQLite has one writer). Call once, on the loop.
    public func followOtherNodes() {
        guard store.isShared, !followingNodes else { return }
        followingNodes = true
        let bound = LoopBound(self, loop: loop)
        store.listen { note in
            bound.hop { app in
                switch note {
                case .head(let topic, let head): app.noteCommittedHead(topic: topic, head: head)
                case .resync: app.resyncHeads()
                }
            }
        }
    }

    /// A topic's committed head, from a notification or the store: fetch what this node's subscribers lack.
    func noteCommittedHead(topic: String, head: Int64) {
        if let known = heads[topic], known < head { heads[topic] = head }
        guard !hub.subscribers(topic: topic).isEmpty, head > hub.head(topic: topic) else { return }
        if let wanted = remoteFetches[topic] {
            remoteFetches[topic] = max(wanted, head)   // one read per topic at a time; this one continues it
            return
        }
        remoteFetches[topic] = head
        fetchCommitted(topic: topic, after: hub.head(topic: topic))
    }

    private func fetchCommitted(topic: String, after: Int64) {
        let bound = LoopBound(self, loop: loop)
        metrics.remoteFetches += 1
        store.events(topic: topic, after: after, limit: Self.remoteFetchPage) { result in
            bound.hop { app in
                let wanted = app.remoteFetches.removeValue(forKey: topic) ?? 0
                switch result {
                case .success(let events):
                    app.metrics.remoteEvents += events.count
                    app.publish(events)
                    app.server?.releaseDeferredFlushes()
                    // More than one page, or notified again meanwhile: go on from where the Hub is now.
                    if wanted > app.hub.head(topic: topic) && !events.isEmpty { app.noteCommittedHead(topic: topic, head: wanted) }
                case .failure(let error):
                    app.logger.warning("reading another node's events failed; retrying", metadata: ["topic": "\(topic)", "error": "\(error.message)"])
                    app.loop.schedule(afterNanoseconds: 500_000_000) { app.noteCommittedHead(topic: topic, head: wanted) }
                }
            }
        }
    }

    /// The listener (re)connected: notifications may have been lost. Cached heads are dropped (a subscribe reads
    /// the store), and every topic with subscribers here reads its head again.
    func resyncHeads() {
        heads.removeAll(keepingCapacity: true)
        metrics.resyncs += 1
        let bound = LoopBound(self, loop: loop)
        for topic in hub.topicNames where !hub.subscribers(topic: topic).isEmpty {
            store.head(topic: topic) { result in
                bound.hop { app in
                    if case .success(let head) = result { app.noteCommittedHead(topic: topic, head: head) }
                }
            }
        }
    }

    /// Events read per store round trip when catching up with another node.
    static let remoteFetchPage = 1000
}
