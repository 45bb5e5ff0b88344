// FailureCategory: how the pipeline ranks the contract's failure categories (the category is Protocol's).
import Protocol

extension FailureCategory {
    /// Lower sorts first when several categories are seen: code that does not load hides every later failure,
    /// so build/load errors outrank runtime ones, and assertions (the code ran) come last before `other`.
    var priority: Int {
        switch self {
        case .diskQuota: 0
        case .timeout: 1
        case .indentation: 2
        case .syntax: 3
        case .import: 4
        case .undefinedName: 5
        case .type: 6
        case .fileNotFound: 7
        case .crash: 8
        case .assertion: 9
        case .other: 10
        }
    }
}
