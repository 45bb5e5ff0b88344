// JSONValueTests: the parser against hostile input, and the writer's escaping and number forms.

import Protocol
import Testing

func parse(_ text: String, limits: JSONParseLimits = JSONParseLimits()) -> Result<JSONValue, JSONParseError> {
    do throws(JSONParseError) { return .success(try JSONValue.parse(text, limits: limits)) } catch {
        return .failure(error)
    }
}

func rejects(_ text: String, limits: JSONParseLimits = JSONParseLimits()) -> Bool {
    if case .failure = parse(text, limits: limits) { true } else { false }
}

@Suite struct JSONParserTests {
    @Test func parsesEveryKind() throws {
        let value = try JSONValue.parse(#" {"a":[1,-2,3.5,-0.25e2,true,false,null,"x"],"b":{}} "#)
        #expect(value["a"] == [1, -2, 3.5, -25.0, true, false, nil, "x"])
        #expect(value["b"] == .object([:]))
        #expect(try JSONValue.parse("0") == .int(0))
        #expect(try JSONValue.parse("-0") == .int(0))
        #expect(try JSONValue.parse("1E2") == .number(100))
        #expect(try JSONValue.parse(#""""#) == "")
    }

    @Test func keepsObjectKeyOrderButComparesUnordered() throws {
        let a = try JSONValue.parse(#"{"z":1,"a":2,"m":3}"#)
        #expect(a.objectValue?.keys == ["z", "a", "m"])
        #expect(a.jsonString == #"{"z":1,"a":2,"m":3}"#)
        #expect(a == (try JSONValue.parse(#"{"a":2,"m":3,"z":1}"#)))
        #expect(a != (try JSONValue.parse(#"{"a":2,"m":3,"z":1,"q":0}"#)))
        #expect(a != (try JSONValue.parse(#"{"a":2,"m":3,"y":1}"#)))
    }

    @Test func integersStayExactAtInt64Bounds() throws {
        #expect(try JSONValue.parse("9223372036854775807") == .int(.max))
        #expect(try JSONValue.parse("-9223372036854775808") == .int(.min))
        // One past the bounds falls back to a Double instead of wrapping.
        guard case .number(let d) = try JSONValue.parse("9223372036854775808") else {
            Issue.record("expected a double")
            return
        }
        #expect(d == 9.223372036854775808e18)
    }

    @Test func rejectsHugeNumbersThatOverflowADouble() {
        #expect(rejects("1e400"))
        #expect(rejects("-1e309"))
        #expect(rejects(String(repeating: "9", count: 400)))
        // A long but finite number is fine.
        #expect(!rejects("0." + String(repeating: "1", count: 400)))
    }

    @Test func rejectsMalformedNumbers() {
        for text in ["01", "-", "1.", ".5", "1e", "1e+", "+1", "0x10", "NaN", "Infinity", "-Infinity", "1.5.2", "--1"] {
            #expect(rejects(text), "\(text)")
        }
    }

    @Test func rejectsTrailingCommasAndGarbage() {
        for text in [
            "[1,2,]", #"{"a":1,}"#, "[,]", "{,}", "[1 2]", #"{"a" 1}"#, #"{"a":1 "b":2}"#, "{1:2}", "[1]]", "{} {}",
            "[1] x", "nul", "tru", "", "   ", "[", "{", #"{"a":"#, #""abc"#, "'a'", "[1,,2]",
        ] {
            #expect(rejects(text), "\(text)")
        }
    }

    @Test func rejectsDuplicateKeys() {
        #expect(rejects(#"{"a":1,"a":2}"#))
        let many = (0..<40).map { "\"k\($0)\":0" }.joined(separator: ",")
        #expect(!rejects("{\(many)}"))
        #expect(rejects("{\(many),\"k7\":1}"))
    }

    @Test func rejectsControlCharactersInStrings() {
        for byte in [0x00, 0x01, 0x09, 0x0A, 0x0D, 0x1F] {
            let text = "\"a" + String(UnicodeScalar(UInt8(byte))) + "b\""
            #expect(rejects(text), "0x\(String(byte, radix: 16))")
            let escapedRun = "\"\\n" + String(UnicodeScalar(UInt8(byte))) + "\""
            #expect(rejects(escapedRun), "after an escape, 0x\(String(byte, radix: 16))")
        }
        #expect(!rejects("\"a\u{7F}b\""))  // DEL is not a control character for RFC 8259
    }

    @Test func decodesEscapesAndSurrogatePairs() throws {
        #expect(try JSONValue.parse(#""\"\\\/\b\f\n\r\t""#) == .string("\"\\/\u{8}\u{C}\n\r\t"))
        #expect(try JSONValue.parse(#""\u00e9\u20AC""#) == "é€")
        #expect(try JSONValue.parse(#""\ud83d\ude00""#) == "😀")
        #expect(try JSONValue.parse(#""\u0000""#) == "\u{0}")
    }

    @Test func rejectsLoneSurrogatesAndBadEscapes() {
        for text in [
            #""\ud83d""#, #""\ude00""#, #""\ud83dx""#, #""\ud83d\u0041""#, #""\ud83d\n""#, #""\uD800\uD800""#,
            #""\u12""#, #""\u12g4""#, #""\x41""#, #""\'""#, #""\"#,
        ] {
            #expect(rejects(text), "\(text)")
        }
    }

    @Test func rejectsInvalidUTF8() {
        for bytes: [UInt8] in [
            [0x22, 0xFF, 0x22], [0x22, 0xC3, 0x22], [0x22, 0xED, 0xA0, 0x80, 0x22],  // encoded surrogate
            [0x22, 0xC0, 0xAF, 0x22],  // overlong '/'
            [0x22, 0x5C, 0x6E, 0xFF, 0x22],  // after an escape (slow path)
        ] {
            #expect(throws: JSONParseError.self) { try JSONValue.parse(bytes) }
        }
        #expect(throws: Never.self) { try JSONValue.parse([0x22, 0xC3, 0xA9, 0x22]) }
    }

    @Test func enforcesDepthLimitAtTheBoundary() {
        let limits = JSONParseLimits(maxDepth: 8)
        #expect(!rejects(String(repeating: "[", count: 8) + String(repeating: "]", count: 8), limits: limits))
        #expect(rejects(String(repeating: "[", count: 9) + String(repeating: "]", count: 9), limits: limits))
        #expect(
            rejects(String(repeating: "{\"a\":", count: 9) + "1" + String(repeating: "}", count: 9), limits: limits))
        // Hostile nesting far beyond the stack: refused quickly, no crash.
        #expect(rejects(String(repeating: "[", count: 1_000_000)))
    }

    @Test func enforcesSizeLimitAtTheBoundary() {
        let limits = JSONParseLimits(maxBytes: 10)
        #expect(!rejects("\"12345678\"", limits: limits))  // 10 bytes
        guard case .failure(let error) = parse("\"123456789\"", limits: limits) else {
            Issue.record("11 bytes accepted")
            return
        }
        #expect(error.isTooLarge)
    }

    @Test func reportsOffsets() {
        guard case .failure(let error) = parse("[1, 2, x]") else {
            Issue.record("accepted")
            return
        }
        #expect(error.offset == 7)
        #expect(error.description.contains("byte 7"))
    }
}

@Suite struct JSONWriterTests {
    @Test func escapesPerRFC8259() {
        let value: JSONValue = .string("q\"b\\s/\n\r\t\u{8}\u{C}\u{0}\u{1F}é😀\u{7F}")
        #expect(value.jsonString == #""q\"b\\s/\n\r\t\b\f\u0000\u001fé😀"# + "\u{7F}\"")
    }

    @Test func writesIntegersWithoutFraction() {
        #expect(JSONValue.int(0).jsonString == "0")
        #expect(JSONValue.int(-42).jsonString == "-42")
        #expect(JSONValue.int(.max).jsonString == "9223372036854775807")
        #expect(JSONValue.int(.min).jsonString == "-9223372036854775808")
        #expect(JSONValue.number(3).jsonString == "3")
        #expect(JSONValue.number(-2.5).jsonString == "-2.5")
        #expect(JSONValue.number(.infinity).jsonString == "null")
        #expect(JSONValue.number(1e300).jsonString == "1e+300")
    }

    @Test func roundTripsThroughTheParser() throws {
        let value: JSONValue = [
            "s": "line\nnext \"quoted\" \u{1} é😀", "i": -7, "d": 0.125, "big": 1e300, "small": 1e-7,
            "a": [nil, true, false, [], [:]], "o": ["nested": ["x": 1]],
        ]
        let parsed = try JSONValue.parse(value.bytes)
        #expect(parsed == value)
        #expect(parsed.bytes == value.bytes)
    }
}

@Suite struct JSONHostileSizeTests {
    /// A near-limit object of 80k distinct keys parses (the duplicate check must not be quadratic;
    /// this is a correctness test — a quadratic check would still pass, only slowly — with the
    /// duplicate at the very end proving the large-object path is still checked).
    @Test func manyKeysAndALateDuplicate() throws {
        let members = (0..<80_000).map { "\"k\($0)\":0" }.joined(separator: ",")
        let value = try JSONValue.parse("{\(members)}")
        #expect(value.objectValue?.count == 80_000)
        #expect(rejects("{\(members),\"k79999\":1}"))
        #expect(rejects("{\(members),\"k0\":1}"))
    }

    @Test func wideArraysAndLongStrings() throws {
        let array = "[" + Array(repeating: "0", count: 200_000).joined(separator: ",") + "]"
        #expect(try JSONValue.parse(array).arrayValue?.count == 200_000)
        let long = String(repeating: "é", count: 300_000)
        #expect(try JSONValue.parse("\"\(long)\"") == .string(long))
    }
}
