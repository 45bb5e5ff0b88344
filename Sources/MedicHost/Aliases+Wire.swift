// Aliases+Wire: names for the wire (Protocol) types that share a name with Pipeline's domain types.
import Protocol

typealias WireFileChange = FileChange
typealias WireRole = Role
typealias WireVerdict = ReviewVerdict
