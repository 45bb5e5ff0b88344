// FeatureRegistryDeclarationTests: well-formed declarations are looked up as declared.
import Protocol
import Testing

@testable import MedicHost

/// A feature made of declarations only.
final class DeclaredFeature: Feature {
    let name: String
    let commands: [CommandDeclaration]
    let topics: [TopicDeclaration]
    let routes: [RESTRoute]

    init(_ name: String, commands: [String] = [], topics: [(String, String)] = [], routes: [(String, String)] = []) {
        self.name = name
        self.commands = commands.map { CommandDeclaration(type: $0, roles: [.admin], changesState: false) }
        self.topics = topics.map { TopicDeclaration(instance: $0.0, collection: $0.1, presence: false) }
        self.routes = routes.map { RESTRoute($0.0, $0.1) { _ in } }
    }

    func execute(_ message: ClientMessage, commandID: String?, principal: Principal, reply: @escaping CommandReply) {}
    func stats() -> JSONObject { [:] }
    func metrics() -> [MetricSample] { [] }
}

@Suite struct FeatureRegistryDeclarationTests {
    @Test func declarationsAreLookedUpAsDeclared() {
        let registry = FeatureRegistry()
        registry.register(DeclaredFeature("a", commands: ["do_a"], topics: [("thing", "things")], routes: [("GET", "api/v1/things/*")]))
        registry.register(DeclaredFeature("b", commands: ["do_b"], topics: [("other", "others")], routes: [("POST", "api/v1/things/*")]))
        #expect(registry.command("do_a")?.feature.name == "a" && registry.command("do_b")?.feature.name == "b")
        #expect(registry.command("subscribe") == nil)
        #expect(registry.knows(Topic("thing:x")!) && registry.knows(Topic("others")!))
        // A collection name is not an instance kind, nor the other way round.
        #expect(!registry.knows(Topic("things:x")!) && !registry.knows(Topic("thing")!))
        #expect(registry.routes.count == 2)
        #expect(registry.passThroughTypes == ["do_a", "do_b"])
    }

    // The refusals (a session command, a command or route declared twice, a topic kind clients cannot spell)
    // are preconditions at startup. Exit tests for them hung under a parallel run with the end-to-end suites
    // (the child never finished), so they are not here until that is understood.
}
