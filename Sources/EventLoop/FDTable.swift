// FDTable: objects indexed by file descriptor — dense, no hashing, grown in steps rather than doubled.

/// A table of objects indexed by fd (or by the low 32 bits of an id that embeds one). The kernel hands
/// out the lowest free fd, so indices stay dense; the table grows by an eighth at a time, so at 20,000
/// connections it holds about 2,500 spare slots (20 KB) rather than up to 20,000 with doubling.
public struct FDTable<Element: AnyObject> {
    private var slots: [Element?] = []

    public init() {}

    public subscript(index: Int) -> Element? {
        get { index < slots.count ? slots[index] : nil }
        set {
            if index >= slots.count {
                guard newValue != nil else { return }
                slots.reserveCapacity(FDTable.capacity(for: index))
                slots.append(contentsOf: repeatElement(nil, count: slots.capacity - slots.count))
            }
            slots[index] = newValue
        }
    }

    /// Every non-nil element, in index order.
    public var elements: [Element] { slots.compactMap { $0 } }

    /// Calls `body` with every non-nil element, in index order (no allocation).
    public func forEach(_ body: (Element) -> Void) {
        for case let element? in slots { body(element) }
    }

    /// The capacity to hold `index`: an eighth more than needed, at least 64.
    static func capacity(for index: Int) -> Int { index + 1 + max(64, index / 8) }
}
