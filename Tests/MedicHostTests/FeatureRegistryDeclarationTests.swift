// FeatureRegistryDeclarationTests: declarations that could never be reached stop registration (in a child
// process: they are preconditions), and well-formed ones are looked up as declared.
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

    @Test func theSameDeclarationsUnderOtherNamesRegisterInAChildToo() async {
        // The refusals below exit the child; this shows that a child registering well-formed ones does not.
        await #expect(processExitsWith: .success) {
            let registry = FeatureRegistry()
            registry.register(DeclaredFeature("x", commands: ["go"], topics: [("note", "notes")], routes: [("GET", "api/v1/x/*")]))
            registry.register(DeclaredFeature("y", commands: ["stop"], topics: [("memo", "memos")], routes: [("DELETE", "api/v1/x/*")]))
        }
    }

    @Test func aSessionCommandCannotBeDeclared() async {
        await #expect(processExitsWith: .failure) { FeatureRegistry().register(DeclaredFeature("x", commands: ["subscribe"])) }
    }

    @Test func aCommandDeclaredTwiceStopsRegistration() async {
        await #expect(processExitsWith: .failure) {
            let registry = FeatureRegistry()
            registry.register(DeclaredFeature("x", commands: ["go"]))
            registry.register(DeclaredFeature("y", commands: ["go"]))
        }
    }

    @Test func aTopicKindClientsCannotSpellStopsRegistration() async {
        await #expect(processExitsWith: .failure) { FeatureRegistry().register(DeclaredFeature("x", topics: [("Note", "notes")])) }
        await #expect(processExitsWith: .failure) { FeatureRegistry().register(DeclaredFeature("x", topics: [("note", "")])) }
    }

    @Test func aRouteDeclaredTwiceStopsRegistration() async {
        await #expect(processExitsWith: .failure) {
            let registry = FeatureRegistry()
            registry.register(DeclaredFeature("x", routes: [("GET", "api/v1/x/*")]))
            registry.register(DeclaredFeature("y", routes: [("GET", "/api/v1/x/*")]))
        }
    }
}
