// RetryPolicy: the pure decision "retry this attempt, and after how long?" for rate-limited, overloaded APIs.
import EventLoop

/// When to retry a request to an API like Anthropic's, and how long to wait first.
///
/// Retryable: HTTP 429 (Too Many Requests, RFC 6585 §4), 500–599 (which covers Anthropic's 529
/// `overloaded_error`), and — decided by the caller, who passes `status: nil` — connect errors and timeouts.
/// The server's wait is honoured when given: `retry-after-ms` (Anthropic/OpenAI extension, milliseconds) first,
/// else `retry-after` (RFC 9110 §10.2.3: delay-seconds or an HTTP-date). Otherwise exponential backoff with
/// jitter: `base · 2^(n-1)`, capped at `maxDelayMilliseconds`, scaled by `1 - 0.25 · random`.
public struct RetryPolicy: Sendable {
    /// Attempts in total, the first included. Default 4.
    public var maxAttempts: Int
    /// Backoff before the second attempt. Default 1 000 ms.
    public var baseDelayMilliseconds: Int
    /// Cap on the computed backoff. Default 30 000 ms.
    public var maxDelayMilliseconds: Int
    /// The longest server-requested wait we accept; a longer `retry-after` means giving up now rather than
    /// stalling the caller (or retrying early into another 429). Default 60 000 ms.
    public var maxRetryAfterMilliseconds: Int

    public init(
        maxAttempts: Int = 4, baseDelayMilliseconds: Int = 1_000, maxDelayMilliseconds: Int = 30_000,
        maxRetryAfterMilliseconds: Int = 60_000
    ) {
        self.maxAttempts = maxAttempts
        self.baseDelayMilliseconds = baseDelayMilliseconds
        self.maxDelayMilliseconds = maxDelayMilliseconds
        self.maxRetryAfterMilliseconds = maxRetryAfterMilliseconds
    }

    /// True for the statuses worth another attempt: 429 and 5xx (529 included).
    public func isRetryable(status: Int) -> Bool {
        status == 429 || (500...599).contains(status)
    }

    /// The wait in milliseconds before attempt `n + 1`, or nil to give up.
    /// - Parameters:
    ///   - n: attempts made so far (1 after the first).
    ///   - status: the HTTP status of attempt `n`, or nil for a connect error / timeout (always retryable).
    ///   - retryAfter: the `retry-after` field, if any.
    ///   - retryAfterMs: the `retry-after-ms` field, if any.
    ///   - random: a number in [0, 1) for jitter (injected so the function stays pure).
    ///   - nowMilliseconds: wall-clock ms since 1970, only used for an HTTP-date `retry-after` (nil: read the clock).
    public func delay(
        afterAttempt n: Int, status: Int?, retryAfter: String?, retryAfterMs: String?, random: Double,
        nowMilliseconds: Int64? = nil
    ) -> Int? {
        guard n < maxAttempts else { return nil }
        if let status, !isRetryable(status: status) { return nil }
        if let requested = requestedDelay(
            retryAfter: retryAfter, retryAfterMs: retryAfterMs, nowMilliseconds: nowMilliseconds ?? wallClockMilliseconds())
        {
            return requested <= maxRetryAfterMilliseconds ? requested : nil
        }
        let exponent = min(max(n - 1, 0), 30)
        let backoff = min(Double(baseDelayMilliseconds) * Double(1 << exponent), Double(maxDelayMilliseconds))
        let jitter = 1 - 0.25 * min(max(random, 0), 1)
        return Int(backoff * jitter)
    }

    /// The server's requested wait in ms, if a field parses; a date in the past means "now" (0).
    func requestedDelay(retryAfter: String?, retryAfterMs: String?, nowMilliseconds: Int64) -> Int? {
        if let text = retryAfterMs?.trimmingWhitespace(), let ms = Double(text), ms.isFinite, ms >= 0 {
            return Int(min(ms, Double(Int32.max)))
        }
        guard let text = retryAfter?.trimmingWhitespace(), !text.isEmpty else { return nil }
        // delay-seconds = 1*DIGIT; fractions are not in the grammar but are harmless to accept.
        if text.allSatisfy({ $0.isASCII && ($0.isNumber || $0 == ".") }), let seconds = Double(text), seconds.isFinite {
            return Int(min(seconds * 1000, Double(Int32.max)))
        }
        guard let date = parseHTTPDate(text) else { return nil }
        let wait = date * 1000 - nowMilliseconds
        return wait <= 0 ? 0 : Int(min(wait, Int64(Int32.max)))
    }
}

/// Parses an HTTP-date (RFC 9110 §5.6.7) into seconds since 1970: IMF-fixdate `Sun, 06 Nov 1994 08:49:37 GMT`
/// and, as recipients must also accept, the obsolete RFC 850 (`Sunday, 06-Nov-94 08:49:37 GMT`) and asctime
/// (`Sun Nov  6 08:49:37 1994`) forms.
public func parseHTTPDate(_ text: String) -> Int64? {
    let months = ["jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"]
    let tokens = text.split(whereSeparator: { $0 == " " || $0 == "," || $0 == "-" || $0 == "\t" }).map { String($0) }
    func month(_ token: String) -> Int? { months.firstIndex(of: token.lowercased()).map { $0 + 1 } }
    func time(_ token: String) -> (Int, Int, Int)? {
        let parts = token.split(separator: ":").compactMap { Int($0) }
        guard parts.count == 3, (0...23).contains(parts[0]), (0...59).contains(parts[1]), (0...60).contains(parts[2]) else {
            return nil
        }
        return (parts[0], parts[1], parts[2])
    }
    var day: Int?, monthNumber: Int?, year: Int?, clock: (Int, Int, Int)?
    if tokens.count == 6, tokens[5].uppercased() == "GMT" {
        // IMF-fixdate / RFC 850: weekday day month year time GMT
        day = Int(tokens[1])
        monthNumber = month(tokens[2])
        if let y = Int(tokens[3]) {
            // RFC 850's two-digit year: RFC 9110 §5.6.7 says a year that looks >50 years ahead is in the past.
            year = tokens[3].count == 2 ? (y < 70 ? 2000 + y : 1900 + y) : y
        }
        clock = time(tokens[4])
    } else if tokens.count == 5 {
        // asctime: weekday month day time year
        monthNumber = month(tokens[1])
        day = Int(tokens[2])
        clock = time(tokens[3])
        year = Int(tokens[4])
    }
    guard let day, let monthNumber, let year, let clock, (1...31).contains(day), year >= 1970 else { return nil }
    let days = daysSinceEpoch(year: year, month: monthNumber, day: day)
    return days * 86_400 + Int64(clock.0 * 3600 + clock.1 * 60 + clock.2)
}

/// Days from 1970-01-01 to a proleptic Gregorian date (Howard Hinnant's days_from_civil algorithm).
private func daysSinceEpoch(year: Int, month: Int, day: Int) -> Int64 {
    let y = Int64(month <= 2 ? year - 1 : year)
    let era = (y >= 0 ? y : y - 399) / 400
    let yearOfEra = y - era * 400
    let m = Int64(month)
    let dayOfYear = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + Int64(day) - 1
    let dayOfEra = yearOfEra * 365 + yearOfEra / 4 - yearOfEra / 100 + dayOfYear
    return era * 146_097 + dayOfEra - 719_468
}
