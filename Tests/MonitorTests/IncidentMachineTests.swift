// IncidentMachineTests: the incident's transitions, pure — opening by severity, admin commands and who may send
// them, the linked bug and proposal, healing after a quiet window, regression, mute expiry, the stored record.
import Monitor
import Protocol
import Testing

@Suite struct IncidentMachineTests {
    static let bucket: Int64 = 1000
    var settings: IncidentSettings {
        var s = IncidentSettings()
        s.bucketMs = Self.bucket
        s.healWindowMs = 3000
        s.graceMs = 1000
        return s
    }

    func anomaly(_ kind: Anomaly.Kind = .newError, value: Double = 40, baseline: Double = 0, at: Int64 = 10_000) -> Anomaly {
        Anomaly(kind: kind, subject: "f-1", service: "api", value: value, baseline: baseline, bucketStart: at, firstSeen: at, lastSeen: at + 900,
                affectedUsers: 7, samples: ["login failed user=a"])
    }

    func open(_ severity: Severity, mayFile: Bool = true) -> (IncidentMachine, [IncidentAction]) {
        IncidentMachine.open(id: "i-1", anomaly: anomaly(), severity: severity, title: "login failed", stack: nil, settings: settings,
                             mayFileAutomatically: mayFile, now: 11_000)
    }

    func kinds(_ actions: [IncidentAction]) -> [String] {
        actions.map { action in
            switch action {
            case .publish(let kind, _): kind
            case .fileBug(let automatic, _): automatic ? "file_bug(auto)" : "file_bug"
            case .reject(let code, _): "reject:\(code)"
            case .ignored: "ignored"
            }
        }
    }

    @Test func severityDecidesWhatOpeningDoes() {
        #expect(kinds(open(.critical).1) == ["incident_opened", "file_bug(auto)"])
        #expect(kinds(open(.high).1) == ["incident_opened", "file_bug(auto)"])
        #expect(kinds(open(.high, mayFile: false).1) == ["incident_opened", "auto_bug_deferred"])
        #expect(open(.high, mayFile: false).0.status == .open)
        #expect(kinds(open(.medium).1) == ["incident_opened"] && open(.medium).0.status == .open)
        #expect(open(.low).0.status == .recorded && open(.low).0.status.isClosed)
    }

    /// Over the hourly limit the deferral is said once, not again with every anomaly while the limit holds; once
    /// something else happened to the incident (here: its mute ended) a new deferral is said again.
    @Test func aDeferredAutomaticBugIsSaidOnceWhileTheLimitHolds() {
        var m = open(.high, mayFile: false).0
        #expect(m.reason?.contains("hourly limit") == true)
        for at: Int64 in [12_000, 13_000, 14_000] {
            let actions = m.handle(.anomaly(anomaly(.spike, at: at), severity: .critical, mayFileAutomatically: false, now: at + 1000))
            #expect(kinds(actions) == ["anomaly", "ignored"], "\(at)")
        }
        _ = m.handle(.mute(by: "ann", role: .admin, durationMs: 60_000, now: 15_000))
        #expect(kinds(m.handle(.anomaly(anomaly(.spike, at: 80_000), severity: .high, mayFileAutomatically: false, now: 81_000)))
                == ["anomaly", "incident_reopened"])
        #expect(kinds(m.handle(.anomaly(anomaly(.spike, at: 85_000), severity: .high, mayFileAutomatically: false, now: 86_000)))
                == ["anomaly", "auto_bug_deferred"])
        #expect(kinds(m.handle(.anomaly(anomaly(.spike, at: 90_000), severity: .high, mayFileAutomatically: false, now: 91_000))) == ["anomaly", "ignored"])
        // The limit allows again: filed.
        #expect(kinds(m.handle(.anomaly(anomaly(.spike, at: 95_000), severity: .high, mayFileAutomatically: true, now: 96_000))) == ["anomaly", "file_bug(auto)"])
    }

    @Test func onlyAdminsActAndOnlyFromStatusesWhereItMeansSomething() {
        var m = open(.medium).0
        #expect(kinds(m.handle(.resolve(by: "v", role: .viewer, reason: nil, now: 12_000))) == ["reject:forbidden"])
        #expect(kinds(m.handle(.acknowledge(by: "b", role: .bot))) == ["reject:forbidden"])
        #expect(kinds(m.handle(.fileBug(by: "i", role: .ingest))) == ["reject:forbidden"])
        #expect(m.status == .open)
        #expect(kinds(m.handle(.acknowledge(by: "ann", role: .admin))) == ["incident_acknowledged"] && m.status == .acknowledged)
        #expect(kinds(m.handle(.acknowledge(by: "ann", role: .admin))) == ["reject:invalid_state"])
        #expect(kinds(m.handle(.mute(by: "ann", role: .admin, durationMs: 60_000, now: 12_000))) == ["incident_muted"] && m.mutedUntil == 72_000)
        #expect(kinds(m.handle(.fileBug(by: "ann", role: .admin))) == ["file_bug"])
        #expect(kinds(m.handle(.fileBug(by: "ann", role: .admin))) == ["reject:invalid_state"])  // one filing at a time
        #expect(kinds(m.handle(.bugFiled(bug: "b-1", automatic: false, by: "ann"))) == ["bug_filed"] && m.status == .fixing)
        #expect(kinds(m.handle(.resolve(by: "ann", role: .admin, reason: "dup", now: 13_000))) == ["incident_resolved"])
        #expect(m.status == .resolved && m.closedAt == 13_000 && m.resolvedBy == "ann")
        #expect(kinds(m.handle(.resolve(by: "ann", role: .admin, reason: nil, now: 14_000))) == ["reject:invalid_state"])
    }

    /// Filed, applied, then quiet for the window after the grace → healed, with the times.
    @Test func healsAfterAQuietWindowFollowingTheFix() {
        var m = open(.critical).0
        _ = m.handle(.bugFiled(bug: "b-1", automatic: true, by: "medic:monitor"))
        _ = m.handle(.bugStatus(bug: "b-1", status: "proposed", proposal: "p-1"))
        #expect(m.proposal == "p-1" && m.status == .fixing)
        #expect(kinds(m.handle(.proposalStatus(proposal: "p-1", status: .applied, commit: "abc", now: 20_000))) == ["fix_applied"])
        #expect(m.status == .watching)
        // Within the grace: not judged, even when loud.
        _ = m.handle(.bucket(start: 20_000, value: 30))
        #expect(m.status == .watching && m.quietSince == nil)
        _ = m.handle(.bucket(start: 21_000, value: 0))
        _ = m.handle(.bucket(start: 22_000, value: 1))  // at the threshold (max(1, 1.5 × 0)) still counts as quiet
        #expect(m.status == .watching)
        let actions = m.handle(.bucket(start: 23_000, value: 0))
        #expect(kinds(actions) == ["bucket", "healed"] && m.status == .healed && m.healedAt == 24_000)
        guard case .publish(_, let data) = actions[1] else { return }
        #expect(data["time_to_heal_ms"]?.intValue == 24_000 - 11_000 && data["fix_to_heal_ms"]?.intValue == 4000)
        #expect(m.series.count == 4 && m.status.isClosed)
        // A bucket after closing changes nothing.
        #expect(kinds(m.handle(.bucket(start: 24_000, value: 50))) == ["ignored"])
    }

    @Test func aLoudBucketRestartsTheQuietWindowAndANeverQuietFixRegresses() {
        var m = open(.high).0
        _ = m.handle(.bugFiled(bug: "b-1", automatic: true, by: "medic:monitor"))
        _ = m.handle(.proposalStatus(proposal: "p-1", status: .applied, commit: nil, now: 20_000))
        _ = m.handle(.bucket(start: 21_000, value: 0))
        _ = m.handle(.bucket(start: 22_000, value: 9))
        #expect(m.quietSince == nil && m.status == .watching)
        _ = m.handle(.bucket(start: 23_000, value: 9))
        #expect(kinds(m.handle(.bucket(start: 24_000, value: 9))) == ["bucket", "regressed"] && m.status == .regressed)
        // The rollback reopens it for an admin.
        #expect(kinds(m.handle(.proposalStatus(proposal: "p-1", status: .rolledBack, commit: nil, now: 30_000))) == ["incident_reopened"])
        #expect(m.status == .open && m.reason?.contains("rolled back") == true)
    }

    @Test func theAnomalyAgainAfterTheGraceRegressesAndAfterHealingToo() {
        var m = open(.high).0
        _ = m.handle(.bugFiled(bug: "b-1", automatic: true, by: "x"))
        _ = m.handle(.proposalStatus(proposal: "p-1", status: .applied, commit: nil, now: 20_000))
        // In the grace: counted, not a regression.
        _ = m.handle(.anomaly(anomaly(.spike, value: 80, at: 20_000), severity: .high, mayFileAutomatically: true, now: 21_000))
        #expect(m.status == .watching && m.occurrences == 2 && m.peak == 80)
        let actions = m.handle(.anomaly(anomaly(.spike, value: 60, at: 22_000), severity: .critical, mayFileAutomatically: true, now: 23_000))
        #expect(kinds(actions) == ["anomaly", "regressed"] && m.severity == .critical)
    }

    @Test func theBugWorkflowGivingUpHandsTheIncidentToAnAdmin() {
        var m = open(.critical).0
        _ = m.handle(.bugFiled(bug: "b-1", automatic: true, by: "x"))
        #expect(kinds(m.handle(.bugStatus(bug: "b-9", status: "unfixed", proposal: nil))) == ["ignored"])
        #expect(kinds(m.handle(.bugStatus(bug: "b-1", status: "unfixed", proposal: nil))) == ["bug_status", "incident_reopened"])
        #expect(m.status == .open)
        // A refused bug report leaves it open with the reason.
        var n = open(.critical).0
        #expect(kinds(n.handle(.bugNotFiled(reason: "no repository"))) == ["auto_bug_deferred"] && n.status == .open && !n.filing)
    }

    @Test func aMutedIncidentReopensWhenItIsStillHappeningAfterTheMute() {
        var m = open(.medium).0
        _ = m.handle(.mute(by: "ann", role: .admin, durationMs: 60_000, now: 12_000))
        _ = m.handle(.anomaly(anomaly(.spike, at: 30_000), severity: .medium, mayFileAutomatically: true, now: 31_000))
        #expect(m.status == .muted)
        #expect(kinds(m.handle(.anomaly(anomaly(.spike, at: 80_000), severity: .medium, mayFileAutomatically: true, now: 81_000))) == ["anomaly", "incident_reopened"])
        #expect(m.status == .open && m.mutedUntil == nil)
        // Escalated to high while open: the bug is filed automatically then.
        #expect(kinds(m.handle(.anomaly(anomaly(.spike, at: 90_000), severity: .high, mayFileAutomatically: true, now: 91_000))) == ["anomaly", "file_bug(auto)"])
    }

    @Test func theRecordRoundTripsAndUnknownVersionsAreRefused() throws {
        var m = open(.critical).0
        _ = m.handle(.bugFiled(bug: "b-1", automatic: true, by: "x"))
        _ = m.handle(.proposalStatus(proposal: "p-1", status: .applied, commit: nil, now: 20_000))
        _ = m.handle(.bucket(start: 21_000, value: 0))
        let loaded = try IncidentMachine.load(document: m.record(updatedAt: 22_000))
        #expect(loaded == m)
        #expect(throws: IncidentRecordError.self) { try IncidentMachine.load(document: #"{"v": 99}"#) }
        #expect(throws: IncidentRecordError.self) { try IncidentMachine.load(document: "not json") }
        #expect(throws: IncidentRecordError.self) { try IncidentMachine.load(document: #"{"v": 1, "id": "i-1"}"#) }
    }
}
