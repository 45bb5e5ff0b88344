import Testing

@Test func EventLoopTestsPlaceholder() { #expect(Bool(true)) }
