// PolicyTests: severity from the configured rules, and the storm guard's limits.
import Monitor
import Testing

@Suite struct PolicyTests {
    func anomaly(_ kind: Anomaly.Kind = .spike, value: Double, baseline: Double = 1, users: Int = 0, service: String = "api", samples: [String] = []) -> Anomaly {
        Anomaly(kind: kind, subject: "f-1", service: service, value: value, baseline: baseline, bucketStart: 0, firstSeen: 0, lastSeen: 0,
                affectedUsers: users, samples: samples)
    }

    @Test func levelsByMultipleUsersKeywordsKindAndService() {
        var p = SeverityPolicy()
        #expect(p.severity(of: anomaly(value: 2), title: "t") == .low)
        #expect(p.severity(of: anomaly(value: 3), title: "t") == .medium)
        #expect(p.severity(of: anomaly(value: 50, baseline: 10), title: "t") == .high)
        #expect(p.severity(of: anomaly(value: 100, baseline: 10), title: "t") == .critical)
        #expect(p.severity(of: anomaly(value: 1, users: 20), title: "t") == .high)
        #expect(p.severity(of: anomaly(value: 1), title: "Wrong PASSWORD for user") == .critical)
        #expect(p.severity(of: anomaly(value: 1, samples: ["payment declined"]), title: "t") == .critical)
        #expect(p.severity(of: anomaly(.authBurst, value: 1), title: "t") == .high)
        // Floors: a ratio over a zero baseline is measured against 1 %, not divided by zero.
        #expect(p.severity(of: anomaly(.errorRate, value: 0.04, baseline: 0), title: "t") == .medium)
        #expect(p.severity(of: anomaly(.errorRate, value: 0.2, baseline: 0), title: "t") == .critical)
        p.criticalServices = ["api"]
        #expect(p.severity(of: anomaly(value: 3), title: "t") == .high)
        #expect(p.severity(of: anomaly(value: 100, baseline: 1), title: "t") == .critical)
    }

    /// A new error has no baseline: its count is not a multiple of anything. It is medium by default, and its
    /// users, keywords and service decide whether it is more.
    @Test func aNewErrorIsMediumUnlessItsUsersKeywordsOrServiceSayMore() {
        var p = SeverityPolicy()
        #expect(p.severity(of: anomaly(.newError, value: 5000, baseline: 0), title: "cache miss") == .medium)
        #expect(p.severity(of: anomaly(.newError, value: 5, baseline: 0), title: "cache miss") == .medium)
        #expect(p.severity(of: anomaly(.newError, value: 5000, baseline: 0, users: 5), title: "t") == .medium)
        #expect(p.severity(of: anomaly(.newError, value: 30, baseline: 0, users: 20), title: "t") == .high)
        #expect(p.severity(of: anomaly(.newError, value: 30, baseline: 0, users: 100), title: "t") == .critical)
        // The demo's error: "password" is a critical keyword.
        #expect(p.severity(of: anomaly(.newError, value: 40, samples: ["login failed user=user3 reason=wrong_password"]), title: "login failed") == .critical)
        p.criticalServices = ["api"]
        #expect(p.severity(of: anomaly(.newError, value: 5000, baseline: 0), title: "t") == .high)
        // The same error spiking later is measured against its baseline as before.
        #expect(SeverityPolicy().severity(of: anomaly(.spike, value: 100, baseline: 10), title: "t") == .critical)
    }

    @Test func oneOpenIncidentPerKeyACooldownAndAnHourlyLimit() {
        var g = StormGuard(limits: StormLimits(maxAutoBugsPerHour: 2, cooldownMs: 1000))
        #expect(g.admit(key: "k", now: 0) == .open)
        g.incidentOpened(key: "k", id: "i-1")
        #expect(g.admit(key: "k", now: 5) == .merge("i-1") && g.admit(key: "other", now: 5) == .open)
        g.incidentClosed(key: "k", id: "i-1", at: 100)
        #expect(g.admit(key: "k", now: 1099) == .merge("i-1"))
        #expect(g.admit(key: "k", now: 1100) == .open)
        #expect(g.mayFileAutomatically(now: 0))
        g.autoBugFiled(at: 0)
        g.autoBugFiled(at: 10)
        #expect(!g.mayFileAutomatically(now: 3_599_999))
        #expect(g.mayFileAutomatically(now: 3_600_001))  // the first left the sliding hour
    }
}
