import DeciDiffusion
import Foundation
import Hummingbird
import HummingbirdTesting
import NIOCore
import XCTest

@testable import DeciServer

/// /v1/models, errors from the middleware in OpenAI's shape, the queue, and a client that disconnects.
final class OpenAIRoutesTests: XCTestCase {
    typealias F = ServerFixtures
    typealias O = OpenAIFixtures

    func testModelsListsTheCatalog() async throws {
        try await F.withServer { client, _ in
            let response = try await client.execute(uri: "/v1/models", method: .get)
            XCTAssertEqual(response.status, .ok)
            let list = try F.object(response)
            XCTAssertEqual(list["object"] as? String, "list")
            let model = try XCTUnwrap((list["data"] as? [[String: Any]])?.first)
            XCTAssertEqual(model["id"] as? String, "demo")
            XCTAssertEqual(model["object"] as? String, "model")
            XCTAssertEqual(model["owned_by"] as? String, "local")
            XCTAssertGreaterThan(model["created"] as? Int ?? 0, 0)
            let one = try await client.execute(uri: "/v1/models/demo", method: .get)
            XCTAssertEqual(try F.object(one)["id"] as? String, "demo")
            let missing = try await client.execute(uri: "/v1/models/dall-e-2", method: .get)
            XCTAssertEqual(try O.error(missing, .notFound)["code"] as? String, "model_not_found")
        }
    }

    /// The API key and body-limit middleware run before any route; on these paths their errors still
    /// come in OpenAI's shape, while the native API keeps its own.
    func testMiddlewareErrorsAreInOpenAIsShapeHere() async throws {
        let settings = ServerSettings(apiKey: "sekret", maxBodyBytes: 1000, logRequests: false)
        try await F.withServer(settings: settings) { client, _ in
            let unauthorized = try await O.generate(client, ["prompt": "x"])
            let e = try O.error(unauthorized, .unauthorized)
            XCTAssertEqual(e["type"] as? String, "authentication_error")
            XCTAssertEqual(e["code"] as? String, "unauthorized")
            XCTAssertNotNil(unauthorized.headers[.wwwAuthenticate])
            _ = try O.error(try await client.execute(uri: "/v1/models", method: .get), .unauthorized)
            let auth: HTTPFields = [.authorization: "Bearer sekret"]
            let big = try await O.generate(client, ["prompt": String(repeating: "x", count: 2000)], headers: auth)
            XCTAssertEqual(try O.error(big, .contentTooLarge)["code"] as? String, "payload_too_large")
            let native = try await client.execute(uri: "/v1/jobs", method: .post, body: F.jsonBody(["prompt": "x"]))
            let nativeError = try F.error(native, .unauthorized)
            XCTAssertNil(nativeError["type"], "the native API keeps its shape")
            let allowed = try await O.generate(client, ["prompt": "x", "steps": 1], headers: auth)
            XCTAssertEqual(try O.images(allowed).count, 1)
        }
    }

    /// A full queue is a 429 with Retry-After and no `x-should-retry: false`: the client may retry it.
    func testAFullQueueIsA429TheClientMayRetry() async throws {
        try await F.withServer(configure: { $0.queueSize = 1 }) { client, _ in
            let running = try await F.submit(client, ["prompt": "x", "steps": 1000])
            _ = try await F.poll(client, running) { $0["status"] as? String == "running" }
            _ = try await F.submit(client, ["prompt": "x", "steps": 1000])
            let response = try await O.generate(client, ["prompt": "x"])
            XCTAssertEqual(try O.error(response, .tooManyRequests, retry: nil)["code"] as? String, "queue_full")
            XCTAssertNotNil(Int(response.headers[.retryAfter] ?? ""))
        }
    }

    /// A job cancelled by someone else (here the native cancel) ends the waiting request with an
    /// error the client does not retry.
    func testACancelledJobIsA503WithoutRetry() async throws {
        try await F.withServer { client, service in
            async let answer = O.generate(client, ["prompt": "x", "steps": 1000])
            var running: JobID?
            for _ in 0..<2000 where running == nil {
                running = service.health.running
                try await Task.sleep(for: .milliseconds(5))
            }
            _ = try service.cancel(try XCTUnwrap(running))
            let response = try await answer
            XCTAssertEqual(try O.error(response, .serviceUnavailable)["code"] as? String, "cancelled")
        }
    }

    /// The `openai` client times out and submits again: the dropped request's job must be cancelled
    /// (within a step), so the next one runs at once instead of queueing behind abandoned work.
    func testAClientThatDisconnectsCancelsItsJob() async throws {
        try await F.withServer(settings: ServerSettings(port: 0, logRequests: false), testing: .live) { client, service in
            let port = try XCTUnwrap(client.port)
            let dropping = TestClient(host: "localhost", port: port)
            dropping.connect()
            try await dropping.executeAndDontWaitForResponse(.init(
                "/v1/images/generations", method: .post, headers: [.contentType: "application/json"],
                body: F.jsonBody(["prompt": "x", "steps": 1000])))
            var running: JobID?
            for _ in 0..<2000 where running == nil {
                running = service.health.running
                try await Task.sleep(for: .milliseconds(5))
            }
            let id = try XCTUnwrap(running, "the request's job started")
            try await dropping.shutdown()
            let deadline = ContinuousClock.now + .seconds(5)
            while try service.job(id).status == .running, ContinuousClock.now < deadline { try await Task.sleep(for: .milliseconds(5)) }
            let job = try service.job(id)
            XCTAssertEqual(job.status, .cancelled)
            XCTAssertLessThan(job.progress?.step ?? 1000, 1000)
            XCTAssertNil(service.health.running)
            let started = ContinuousClock.now
            let next = try await client.execute(uri: "/v1/images/generations", method: .post, headers: [.contentType: "application/json"],
                                                body: F.jsonBody(["prompt": "x", "steps": 2]))
            XCTAssertEqual(try O.images(next).count, 1)
            XCTAssertLessThan(ContinuousClock.now - started, .seconds(5))
        }
    }
}
