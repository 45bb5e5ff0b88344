// MetricsExpositionTests: features' Prometheus samples become valid text whatever features declare — families
// grouped, names checked, values and help spelled as the exposition format (0.0.4) requires.
import Testing

@testable import MedicHost

@Suite struct MetricsExpositionTests {
    @Test func aFamilySplitAcrossFeaturesIsOneGroupWithOneHeader() {
        let lines = App.exposition([
            MetricSample("jobs_total", "Jobs.", type: "counter", value: 1, labels: [("kind", "a")]),
            MetricSample("queue", "Queued.", value: 3),
            MetricSample("jobs_total", "Other help.", type: "counter", value: 2, labels: [("kind", "b")]),
        ])
        #expect(lines == [
            "# HELP medic_jobs_total Jobs.", "# TYPE medic_jobs_total counter",
            "medic_jobs_total{kind=\"a\"} 1", "medic_jobs_total{kind=\"b\"} 2",
            "# HELP medic_queue Queued.", "# TYPE medic_queue gauge", "medic_queue 3",
        ])
    }

    @Test func badNamesAreLeftOutAndTextIsEscaped() {
        let lines = App.exposition([
            MetricSample("bad name", "x", value: 1),
            MetricSample("9lives", "x", value: 1),
            MetricSample("", "x", value: 1),
            MetricSample("ok", "x", value: 1, labels: [("bad-label", "v")]),
            MetricSample("ok", "x", value: 1, labels: [("a:b", "v")]),
            MetricSample("ok", "two\nlines \\ here", type: "histogram", value: 1, labels: [("l", "q\"\n\\")]),
        ])
        #expect(lines == [
            "# HELP medic_ok two\\nlines \\\\ here", "# TYPE medic_ok gauge", "medic_ok{l=\"q\\\"\\n\\\\\"} 1",
        ])
    }

    @Test func valuesAreSpelledAsTheFormatSays() {
        #expect(App.metricValue(42) == "42")
        #expect(App.metricValue(-3) == "-3")
        #expect(App.metricValue(0.25) == "0.25")
        #expect(App.metricValue(.nan) == "NaN")
        #expect(App.metricValue(.infinity) == "+Inf")
        #expect(App.metricValue(-.infinity) == "-Inf")
        #expect(App.metricValue(1e20) == "1e+20")
    }
}
