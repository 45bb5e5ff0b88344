// HTTPDate: HTTP-date formatting and parsing (RFC 9110 §5.6.7), without Foundation.

/// HTTP-date: generates IMF-fixdate ("Sun, 06 Nov 1994 08:49:37 GMT") and parses all three
/// formats a recipient must accept (RFC 9110 §5.6.7): IMF-fixdate, the obsolete RFC 850
/// form and asctime. Pure arithmetic on the proleptic Gregorian calendar, in UTC.
public enum HTTPDate {
    private static let dayNames = ["Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"]
    private static let longDayNames = ["Sunday", "Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday"]
    private static let monthNames = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"]

    /// IMF-fixdate for a Unix time (seconds since 1970-01-01T00:00:00Z).
    public static func format(secondsSince1970: Int64) -> String {
        let days = floorDiv(secondsSince1970, 86_400)
        let secondOfDay = Int(secondsSince1970 - days * 86_400)
        let (year, month, day) = civil(fromDays: days)
        // 1970-01-01 was a Thursday (index 4).
        let weekday = Int(((days % 7) + 7 + 4) % 7)
        return "\(dayNames[weekday]), \(pad2(day)) \(monthNames[month - 1]) \(pad4(year)) "
            + "\(pad2(secondOfDay / 3600)):\(pad2(secondOfDay / 60 % 60)):\(pad2(secondOfDay % 60)) GMT"
    }

    /// Unix time for an HTTP-date in any of the three formats, or nil if `s` is not one.
    /// The day name is checked for spelling but not against the date. An RFC 850 two-digit
    /// year is taken as 19yy when >= 70, else 20yy (RFC 9110 §5.6.7 asks for "most recent
    /// year with those digits not over 50 years ahead"; this is that rule fixed at 2020,
    /// which keeps the function pure and matters only for a form no client sends any more).
    public static func parse(_ s: String) -> Int64? {
        let b = Array(s.utf8)
        if b.count == 29, b[3] == 0x2C { return parseIMF(b) }
        if b.count == 24, b[3] == ASCII.space { return parseAsctime(b) }
        return parseRFC850(b)
    }

    /// "Sun, 06 Nov 1994 08:49:37 GMT"
    private static func parseIMF(_ b: [UInt8]) -> Int64? {
        guard dayNames.contains(text(b[0..<3])), b[4] == ASCII.space, b[7] == ASCII.space, b[11] == ASCII.space,
            b[16] == ASCII.space, text(b[25..<29]) == " GMT",
            let day = number(b[5..<7]), let month = month(b[8..<11]), let year = number(b[12..<16])
        else { return nil }
        return assemble(year, month, day, b[17..<25])
    }

    /// "Sunday, 06-Nov-94 08:49:37 GMT"
    private static func parseRFC850(_ b: [UInt8]) -> Int64? {
        guard let comma = b.firstIndex(of: 0x2C), longDayNames.contains(text(b[..<comma])) else { return nil }
        let r = Array(b[(comma + 1)...])
        guard r.count == 23, r[0] == ASCII.space, r[3] == 0x2D, r[7] == 0x2D, r[10] == ASCII.space,
            text(r[19..<23]) == " GMT",
            let day = number(r[1..<3]), let month = month(r[4..<7]), let yy = number(r[8..<10])
        else { return nil }
        return assemble(yy >= 70 ? 1900 + yy : 2000 + yy, month, day, r[11..<19])
    }

    /// "Sun Nov  6 08:49:37 1994"
    private static func parseAsctime(_ b: [UInt8]) -> Int64? {
        guard dayNames.contains(text(b[0..<3])), b[7] == ASCII.space, b[10] == ASCII.space,
            b[19] == ASCII.space, let month = month(b[4..<7]), let year = number(b[20..<24])
        else { return nil }
        let dayDigits = b[8] == ASCII.space ? b[9..<10] : b[8..<10]
        guard let day = number(dayDigits) else { return nil }
        return assemble(year, month, day, b[11..<19])
    }

    /// Validates the fields and converts; `time` is "HH:MM:SS".
    private static func assemble(_ year: Int, _ month: Int, _ day: Int, _ time: ArraySlice<UInt8>) -> Int64? {
        let t = Array(time)
        guard t.count == 8, t[2] == ASCII.colon, t[5] == ASCII.colon, let h = number(t[0..<2]),
            let m = number(t[3..<5]), let sec = number(t[6..<8]), h < 24, m < 60, sec <= 60,
            day >= 1, day <= daysIn(month: month, year: year)
        else { return nil }
        let days = daysFromCivil(year: year, month: month, day: day)
        return days * 86_400 + Int64(h * 3600 + m * 60 + sec)
    }

    private static func text(_ b: ArraySlice<UInt8>) -> String { String(decoding: b, as: UTF8.self) }

    private static func number(_ b: ArraySlice<UInt8>) -> Int? {
        guard !b.isEmpty else { return nil }
        var n = 0
        for d in b {
            guard d >= 0x30 && d <= 0x39 else { return nil }
            n = n * 10 + Int(d - 0x30)
        }
        return n
    }

    private static func month(_ b: ArraySlice<UInt8>) -> Int? {
        monthNames.firstIndex(of: text(b)).map { $0 + 1 }
    }

    private static func daysIn(month: Int, year: Int) -> Int {
        switch month {
        case 2: (year % 4 == 0 && year % 100 != 0) || year % 400 == 0 ? 29 : 28
        case 4, 6, 9, 11: 30
        default: 31
        }
    }

    private static func floorDiv(_ a: Int64, _ b: Int64) -> Int64 {
        a >= 0 ? a / b : -((-a + b - 1) / b)
    }

    /// Days since 1970-01-01 for a civil date (era-based Gregorian arithmetic, 400-year cycles).
    static func daysFromCivil(year: Int, month: Int, day: Int) -> Int64 {
        let y = Int64(month <= 2 ? year - 1 : year)
        let era = (y >= 0 ? y : y - 399) / 400
        let yearOfEra = y - era * 400
        let mp = Int64(month > 2 ? month - 3 : month + 9)
        let dayOfYear = (153 * mp + 2) / 5 + Int64(day) - 1
        let dayOfEra = yearOfEra * 365 + yearOfEra / 4 - yearOfEra / 100 + dayOfYear
        return era * 146_097 + dayOfEra - 719_468
    }

    /// The inverse of `daysFromCivil`.
    static func civil(fromDays days: Int64) -> (year: Int, month: Int, day: Int) {
        let z = days + 719_468
        let era = (z >= 0 ? z : z - 146_096) / 146_097
        let dayOfEra = z - era * 146_097
        let yearOfEra = (dayOfEra - dayOfEra / 1460 + dayOfEra / 36_524 - dayOfEra / 146_096) / 365
        let dayOfYear = dayOfEra - (365 * yearOfEra + yearOfEra / 4 - yearOfEra / 100)
        let mp = (5 * dayOfYear + 2) / 153
        let day = dayOfYear - (153 * mp + 2) / 5 + 1
        let month = mp < 10 ? mp + 3 : mp - 9
        let year = yearOfEra + era * 400 + (month <= 2 ? 1 : 0)
        return (Int(year), Int(month), Int(day))
    }

    private static func pad2(_ n: Int) -> String { n < 10 ? "0\(n)" : "\(n)" }
    private static func pad4(_ n: Int) -> String {
        let s = String(n)
        return String(repeating: "0", count: max(0, 4 - s.count)) + s
    }
}
