import Testing

@Test func PipelineTestsPlaceholder() { #expect(Bool(true)) }
