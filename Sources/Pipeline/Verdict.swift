// Verdict: a reviewer's decision on one revision — Protocol's `ReviewVerdict` (approve / reject /
// request_changes, contract `review.verdict`) under the pipeline's name for it.
public import Protocol

public typealias Verdict = ReviewVerdict
