// Fuzz target `summary`: the test-summary parser, the failure analyzer and the test-name reader (FailingTests)
// on arbitrary test output.
//
// Invariants: counts are never negative; the analysis respects its limits, names its primary category first
// and once, keeps only repository-relative locations (from the given file list when there is one) with lines
// from 1, and is deterministic; FailingTests returns at most 200 distinct, non-empty one-line names, each
// shorter than a line it may read, and the same names twice.
import Pipeline
import Protocol

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzSummary(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    var input = FuzzInput(data, size)
    let exitCode = Int32(input.int(below: 300)) - 20
    let timedOut = input.byte() & 7 == 0
    let signalByte = input.byte()
    let signal: Int32? = signalByte & 3 == 0 ? Int32(signalByte >> 2) : nil
    let useFiles = input.bool()
    let limits = AnalyzerLimits(maxLocations: input.int(below: 8), maxMessages: input.int(below: 8),
                                maxMessageLength: 1 + input.int(below: 200), maxScanBytes: 16 + input.int(below: 8192))
    let output = String(decoding: input.rest, as: UTF8.self)

    let summary = TestSummaryParser.parse(output)
    require((summary.passed ?? 0) >= 0 && (summary.failed ?? 0) >= 0, "negative counts \(summary)")

    // A plausible file list: the path-looking words of the output itself, so locations can match.
    let files: Set<String>? = useFiles
        ? Set(output.split(whereSeparator: { " \t\n\r\"'(),:".contains($0) }).map(String.init).filter { $0.contains(".") && !$0.hasPrefix("/") }.prefix(32))
        : nil
    let analysis = FailureAnalyzer.analyze(output: output, exitCode: exitCode, timedOut: timedOut, signal: signal,
                                           repositoryFiles: files, workspaceRoot: "/work/ws", limits: limits)
    require(analysis.categories.first == analysis.category, "the primary category is not first")
    require(Set(analysis.categories).count == analysis.categories.count, "a category listed twice")
    require(analysis.locations.count <= limits.maxLocations, "\(analysis.locations.count) locations over the limit")
    require(analysis.messages.count <= limits.maxMessages, "\(analysis.messages.count) messages over the limit")
    for message in analysis.messages {
        require(message.count <= limits.maxMessageLength + 1, "a message of \(message.count) characters")
    }
    require(Set(analysis.locations).count == analysis.locations.count, "a location listed twice")
    for location in analysis.locations {
        require(location.line >= 1, "line \(location.line)")
        require(!location.file.isEmpty && !location.file.hasPrefix("/"), "location file '\(location.file)'")
        if let files { require(files.contains(location.file), "'\(location.file)' is not a repository file") }
    }
    require(!analysis.rootCause.isEmpty, "no root cause")
    if timedOut { require(analysis.category == .timeout, "a timed-out run classified \(analysis.category)") }
    let again = FailureAnalyzer.analyze(output: output, exitCode: exitCode, timedOut: timedOut, signal: signal,
                                        repositoryFiles: files, workspaceRoot: "/work/ws", limits: limits)
    require(again == analysis, "the analysis is not deterministic")

    for names in [FailingTests.parse(output), FailingTests.passed(output)] {
        require(names.count <= FailingTests.maxNames, "\(names.count) test names")
        require(Set(names).count == names.count, "a test name listed twice")
        for name in names {
            require(!name.isEmpty && name.utf8.count <= FailingTests.maxLineBytes, "test name of \(name.utf8.count) bytes")
            require(!name.contains("\n") && !name.contains("\r"), "a test name over two lines")
        }
    }
    require(FailingTests.parse(output) == FailingTests.parse(output), "FailingTests.parse is not deterministic")
    return 0
}
