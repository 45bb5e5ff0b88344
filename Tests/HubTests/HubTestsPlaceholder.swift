import Testing

@Test func HubTestsPlaceholder() { #expect(Bool(true)) }
