import DeciDiffusion
import Foundation
import Hummingbird
import HummingbirdTesting
import Logging
import NIOCore
import TestSupport
import XCTest

@testable import DeciServer

/// The real application (``buildApplication``) over a service on the bundled demo model, driven
/// through Hummingbird's testing client.
enum ServerFixtures {
    static let demoFolder = FixturePaths.root.deletingLastPathComponent().appendingPathComponent("Models/demo")

    static func withServer(settings: ServerSettings = ServerSettings(logRequests: false), testing: TestingSetup = .router,
                           catalog: ModelCatalog? = nil,
                           configure: (inout ServiceConfiguration) -> Void = { _ in },
                           _ body: @Sendable (any TestClientProtocol, GenerationService) async throws -> Void) async throws {
        var configuration = ServiceConfiguration()
        configure(&configuration)
        let metrics = ServerMetrics()
        let service = GenerationService(catalog: try catalog ?? ModelCatalog(folder: demoFolder), configuration: configuration, observer: metrics)
        try service.preload()
        defer { service.shutdown() }
        var logger = Logger(label: "test")
        logger.logLevel = .error
        let app = buildApplication(service: service, settings: settings, metrics: metrics, logger: logger)
        try await app.test(testing) { client in try await body(client, service) }
    }

    /// A models directory holding the demo model twice, as `alpha` and `beta` (symbolic links).
    static func twoModels() throws -> ModelCatalog {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("deci-models-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        for name in ["alpha", "beta"] {
            try FileManager.default.createSymbolicLink(at: dir.appendingPathComponent(name), withDestinationURL: demoFolder)
        }
        return try ModelCatalog(modelsDirectory: dir)
    }

    static func jsonBody(_ object: [String: Any]) throws -> ByteBuffer {
        ByteBuffer(bytes: try JSONSerialization.data(withJSONObject: object))
    }

    static func object(_ response: TestResponse, file: StaticString = #filePath, line: UInt = #line) throws -> [String: Any] {
        let value = try JSONSerialization.jsonObject(with: Data(response.body.readableBytesView))
        return try XCTUnwrap(value as? [String: Any], "not a JSON object: \(String(buffer: response.body))", file: file, line: line)
    }

    /// The `error` object of an error response, after checking its status.
    static func error(_ response: TestResponse, _ status: HTTPResponse.Status, file: StaticString = #filePath,
                      line: UInt = #line) throws -> [String: Any] {
        XCTAssertEqual(response.status, status, String(buffer: response.body), file: file, line: line)
        return try XCTUnwrap(object(response, file: file, line: line)["error"] as? [String: Any], file: file, line: line)
    }

    /// POST /v1/jobs; returns the new job's id after checking the 202.
    static func submit(_ client: any TestClientProtocol, _ fields: [String: Any], headers: HTTPFields = [:],
                       file: StaticString = #filePath, line: UInt = #line) async throws -> String {
        let response = try await client.execute(uri: "/v1/jobs", method: .post, headers: headers, body: jsonBody(fields))
        XCTAssertEqual(response.status, .accepted, String(buffer: response.body), file: file, line: line)
        return try XCTUnwrap(object(response)["id"] as? String, file: file, line: line)
    }

    /// Polls GET /v1/jobs/{id} until `done` holds (10 s at most).
    static func poll(_ client: any TestClientProtocol, _ id: String, headers: HTTPFields = [:],
                     until done: ([String: Any]) -> Bool = { ["succeeded", "failed", "cancelled"].contains($0["status"] as? String ?? "") },
                     file: StaticString = #filePath, line: UInt = #line) async throws -> [String: Any] {
        let deadline = ContinuousClock.now + .seconds(10)
        while true {
            let response = try await client.execute(uri: "/v1/jobs/\(id)", method: .get, headers: headers)
            XCTAssertEqual(response.status, .ok, String(buffer: response.body), file: file, line: line)
            let job = try object(response)
            if done(job) { return job }
            guard ContinuousClock.now < deadline else {
                XCTFail("job \(id) did not reach the state in 10 s: \(job)", file: file, line: line)
                return job
            }
            try await Task.sleep(for: .milliseconds(5))
        }
    }
}
