// FailureCategory: how the pipeline ranks the contract's failure categories (the category is Protocol's).
import Protocol

extension FailureCategory {
    /// Lower sorts first when several categories are seen: code that does not load hides every later failure,
    /// so build/load errors outrank runtime ones, and assertions (the code ran) come last before `other`.
    var priority: Int {
        switch self {
        case .timeout: 0
        case .indentation: 1
        case .syntax: 2
        case .import: 3
        case .undefinedName: 4
        case .type: 5
        case .fileNotFound: 6
        case .crash: 7
        case .assertion: 8
        case .other: 9
        }
    }
}
