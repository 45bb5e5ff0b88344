import Testing

@Test func StoreTestsPlaceholder() { #expect(Bool(true)) }
