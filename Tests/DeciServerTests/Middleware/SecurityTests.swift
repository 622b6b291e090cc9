import Foundation
import Hummingbird
import HummingbirdTesting
import NIOCore
import XCTest

@testable import DeciServer

/// API key, CORS and the body limit through the real router.
final class SecurityTests: XCTestCase {
    typealias F = ServerFixtures

    func testWithAKeyEveryRouteButHealthzAndThePageNeedsIt() async throws {
        try await F.withServer(settings: ServerSettings(apiKey: "s3cret", logRequests: false)) { client, _ in
            for (uri, method) in [("/v1/jobs", HTTPRequest.Method.post), ("/v1/jobs/x", .get), ("/v1/jobs/x/events", .get),
                                  ("/v1/jobs/x/cancel", .post), ("/v1/jobs/x", .delete), ("/v1/jobs/x/images/0.png", .get),
                                  ("/v1/capabilities", .get), ("/metrics", .get), ("/openapi.json", .get)] {
                for headers: HTTPFields in [[:], [.authorization: "Bearer wrong"], [.authorization: "Bearer s3cre"],
                                            [.authorization: "Basic s3cret"], [.authorization: "s3cret"]] {
                    let response = try await client.execute(uri: uri, method: method, headers: headers, body: F.jsonBody(["prompt": "x"]))
                    XCTAssertEqual(try F.error(response, .unauthorized)["code"] as? String, "unauthorized", "\(method) \(uri) \(headers)")
                    XCTAssertEqual(response.headers[.wwwAuthenticate], "Bearer realm=\"decidiffusion\"")
                }
            }
            for uri in ["/healthz", "/"] {
                let response = try await client.execute(uri: uri, method: .get)
                XCTAssertEqual(response.status, .ok, uri)
            }
            let key: HTTPFields = [.authorization: "Bearer s3cret"]
            let id = try await F.submit(client, ["prompt": "x", "steps": 2], headers: key)
            let job = try await F.poll(client, id, headers: key)
            XCTAssertEqual(job["status"] as? String, "succeeded")
            let image = try await client.execute(uri: "/v1/jobs/\(id)/images/0.png", method: .get, headers: [.authorization: "bearer s3cret"])
            XCTAssertEqual(image.status, .ok, "the scheme name is case-insensitive")
            // HTTP Basic as A1111 clients send it (--api-auth user:pass): the key as the password, or as user:pass.
            func basic(_ credentials: String) -> HTTPFields { [.authorization: "Basic " + Data(credentials.utf8).base64EncodedString()] }
            for good in ["user:s3cret", ":s3cret"] {
                let r = try await client.execute(uri: "/v1/capabilities", method: .get, headers: basic(good))
                XCTAssertEqual(r.status, .ok, good)
            }
            for bad in ["s3cret:user", "user:wrong", "", "user:"] {
                let r = try await client.execute(uri: "/v1/capabilities", method: .get, headers: basic(bad))
                XCTAssertEqual(r.status, .unauthorized, bad)
            }
            // An empty header (Open WebUI without a key) is no credentials: 401, not 400.
            let empty = try await client.execute(uri: "/v1/capabilities", method: .get, headers: [.authorization: ""])
            XCTAssertEqual(empty.status, .unauthorized)
        }
    }

    func testConstantTimeComparisonIsExact() {
        let eq = APIKeyMiddleware.constantTimeEqual
        XCTAssertTrue(eq(Array("abc".utf8), Array("abc".utf8)))
        XCTAssertFalse(eq(Array("abc".utf8), Array("abd".utf8)))
        XCTAssertFalse(eq(Array("abc".utf8), Array("abcd".utf8)))
        XCTAssertFalse(eq(Array("".utf8), Array("a".utf8)))
        // Lengths that differ by a multiple of 256 must not look equal.
        XCTAssertFalse(eq([UInt8](repeating: 0, count: 256), []))
    }

    func testCORSHeadersOnlyForTheConfiguredOrigin() async throws {
        let preflight: HTTPFields = [.origin: "http://localhost:3000", .accessControlRequestMethod: "POST",
                                     .accessControlRequestHeaders: "content-type, authorization"]
        try await F.withServer { client, _ in
            let response = try await client.execute(uri: "/v1/capabilities", method: .get, headers: [.origin: "http://localhost:3000"])
            XCTAssertEqual(response.status, .ok)
            XCTAssertNil(response.headers[.accessControlAllowOrigin], "CORS is off by default")
            let options = try await client.execute(uri: "/v1/jobs", method: .options, headers: preflight)
            XCTAssertNil(options.headers[.accessControlAllowOrigin])
        }
        try await F.withServer(settings: ServerSettings(apiKey: "k", corsOrigin: "http://localhost:3000", logRequests: false)) { client, _ in
            let options = try await client.execute(uri: "/v1/jobs", method: .options, headers: preflight)
            XCTAssertEqual(options.headers[.accessControlAllowOrigin], "http://localhost:3000", "a preflight needs no key")
            XCTAssertTrue(options.headers[.accessControlAllowMethods]?.contains("POST") ?? false)
            let get = try await client.execute(uri: "/v1/capabilities", method: .get,
                                               headers: [.origin: "http://localhost:3000", .authorization: "Bearer k"])
            XCTAssertEqual(get.headers[.accessControlAllowOrigin], "http://localhost:3000")
            let other = try await client.execute(uri: "/v1/capabilities", method: .get,
                                                 headers: [.origin: "http://evil.example", .authorization: "Bearer k"])
            XCTAssertNotEqual(other.headers[.accessControlAllowOrigin], "http://evil.example")
            XCTAssertNotEqual(other.headers[.accessControlAllowOrigin], "*")
        }
    }

    func testBodiesOverTheLimitAre413() async throws {
        try await F.withServer(settings: ServerSettings(maxBodyBytes: 1000, logRequests: false)) { client, service in
            let big = try F.jsonBody(["prompt": String(repeating: "a", count: 2000)])
            let response = try await client.execute(uri: "/v1/jobs", method: .post, body: big)
            let e = try F.error(response, .contentTooLarge)
            XCTAssertEqual(e["code"] as? String, "payload_too_large")
            XCTAssertTrue((e["message"] as? String ?? "").contains("1000"))
            XCTAssertEqual(service.health.queueDepth, 0)
            XCTAssertNil(service.health.running)
            // Just under the limit is fine.
            _ = try await F.submit(client, ["prompt": String(repeating: "a", count: 900), "steps": 1])
        }
    }
}
