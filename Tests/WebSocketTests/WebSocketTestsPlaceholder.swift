import Testing

@Test func WebSocketTestsPlaceholder() { #expect(Bool(true)) }
