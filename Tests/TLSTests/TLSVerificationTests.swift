// TLSVerificationTests: contexts, certificate files and peer verification.
import TLS
import TestSupport
import Testing

@Suite struct TLSVerificationTests {
    @Test func clientTrustingTheServerCertificateVerifiesNameAndIP() throws {
        let files = try TestCertificates.localhost()
        let context = try TLSContext.client(trustedCAPath: files.certificatePath, verifyPeer: true)
        for name in ["localhost", "127.0.0.1"] {
            let pair = try EnginePair.make(clientContext: context, serverName: name)
            pair.pump()
            #expect(pair.clientOutcome == nil, "\(name): \(String(describing: pair.clientFailure))")
            #expect(pair.client.isHandshakeComplete && pair.server.isHandshakeComplete)
        }
    }

    @Test func clientTrustingADifferentCAFailsVerification() throws {
        let other = try TestCertificates.generateSelfSigned(commonName: "localhost")
        let context = try TLSContext.client(trustedCAPath: other.certificatePath, verifyPeer: true)
        let pair = try EnginePair.make(clientContext: context, serverName: "localhost")
        pair.pump()
        let error = try #require(pair.clientFailure)
        #expect(error.code == .certificateVerification)
        #expect(error.description.contains("certificate verify failed"), "\(error)")
        #expect(error.verificationResult?.contains("self-signed") == true, "\(error)")
        #expect(!pair.client.isHandshakeComplete)
        // The client's fatal alert reaches the server, which fails too.
        let serverError = try #require(pair.serverFailure)
        #expect(serverError.description.contains("alert"), "\(serverError)")
    }

    @Test func wrongServerNameFailsVerification() throws {
        let files = try TestCertificates.localhost()
        let context = try TLSContext.client(trustedCAPath: files.certificatePath, verifyPeer: true)
        let pair = try EnginePair.make(clientContext: context, serverName: "example.com")
        pair.pump()
        let error = try #require(pair.clientFailure)
        #expect(error.code == .certificateVerification)
        #expect(error.verificationResult?.contains("hostname mismatch") == true, "\(error)")
    }

    @Test func serverContextRefusesAMissingCertificateFile() throws {
        let files = try TestCertificates.localhost()
        let missing = "/nonexistent/medic-cert.pem"
        do {
            _ = try TLSContext.server(certificatePath: missing, keyPath: files.keyPath)
            Issue.record("a missing certificate file was accepted")
        } catch {
            #expect(error.code == .configuration)
            #expect(error.operation.contains(missing))
            #expect(error.description.contains("No such file"), "\(error)")
        }
    }

    @Test func serverContextRefusesAKeyThatDoesNotMatchTheCertificate() throws {
        let files = try TestCertificates.localhost()
        let other = try TestCertificates.generateSelfSigned()
        do {
            _ = try TLSContext.server(certificatePath: files.certificatePath, keyPath: other.keyPath)
            Issue.record("a mismatched key was accepted")
        } catch {
            #expect(error.code == .configuration)
            #expect(error.description.contains("values mismatch"), "\(error)")
        }
    }

    @Test func clientContextRefusesAMissingCAFile() throws {
        #expect(throws: TLSError.self) {
            _ = try TLSContext.client(trustedCAPath: "/nonexistent/ca.pem", verifyPeer: true)
        }
    }

    @Test func overlongServerNameIsRefusedAtEngineCreation() throws {
        let context = try TLSContext.client(trustedCAPath: nil, verifyPeer: false)
        // SNI host names are at most 255 bytes (RFC 6066 §3); OpenSSL refuses longer ones.
        do {
            _ = try TLSEngine(context: context, serverName: String(repeating: "a", count: 300))
            Issue.record("an overlong server name was accepted")
        } catch {
            #expect(error.code == .engineSetup)
        }
    }

    @Test func localhostCertificateIsCachedAndReadable() throws {
        let first = try TestCertificates.localhost()
        let second = try TestCertificates.localhost()
        #expect(first.certificatePath == second.certificatePath)
        #expect(first.keyPath == second.keyPath)
        let fresh = try TestCertificates.generateSelfSigned()
        #expect(fresh.certificatePath != first.certificatePath)
    }
}
