import Testing

@Test func HTTP1TestsPlaceholder() { #expect(Bool(true)) }
