import Foundation
import Hummingbird
import HummingbirdTesting
import XCTest

@testable import DeciServer

/// The page, /healthz, /metrics, /v1/capabilities and /openapi.json.
final class SystemRoutesTests: XCTestCase {
    typealias F = ServerFixtures

    func testThePageIsSelfContainedHTML() async throws {
        try await F.withServer { client, _ in
            let response = try await client.execute(uri: "/", method: .get)
            XCTAssertEqual(response.status, .ok)
            XCTAssertEqual(response.headers[.contentType], "text/html; charset=utf-8")
            let html = String(buffer: response.body)
            XCTAssertTrue(html.hasPrefix("<!doctype html>") || html.hasPrefix("<!DOCTYPE html>"), String(html.prefix(40)))
            XCTAssertTrue(html.contains("name=\"viewport\""), "phone-sized screens")
            // No CDN, no external script or style: everything is in the binary.
            XCTAssertFalse(html.contains("src=\"http"), "an external script")
            XCTAssertFalse(html.contains("href=\"http"), "an external stylesheet or link")
            for api in ["/v1/jobs", "/v1/capabilities", "/events", "/cancel"] { XCTAssertTrue(html.contains(api), api) }
        }
    }

    func testHealthzReportsTheModelAndTheQueue() async throws {
        try await F.withServer(configure: { $0.queueSize = 5 }) { client, _ in
            let response = try await client.execute(uri: "/healthz", method: .get)
            XCTAssertEqual(response.status, .ok)
            let h = try F.object(response)
            XCTAssertEqual(h["status"] as? String, "ok")
            XCTAssertEqual(h["model_loaded"] as? Bool, true)
            XCTAssertEqual(h["queue_depth"] as? Int, 0)
            XCTAssertEqual(h["queue_capacity"] as? Int, 5)
            XCTAssertTrue(h["running"] is NSNull)
            XCTAssertEqual((h["models"] as? [[String: Any]])?.first?["name"] as? String, "demo")
        }
    }

    func testCapabilitiesNameTheModelDefaultsSchedulersAndLimits() async throws {
        try await F.withServer(settings: ServerSettings(maxBodyBytes: 1 << 20, logRequests: false),
                               configure: { $0.limits = .init(maxPixelsPerImage: 512 * 512, maxBatch: 3) }) { client, _ in
            let c = try F.object(try await client.execute(uri: "/v1/capabilities", method: .get))
            XCTAssertEqual(c["default_model"] as? String, "demo")
            let models = try XCTUnwrap(c["models"] as? [[String: Any]])
            XCTAssertEqual(models.count, 1)
            XCTAssertEqual(models[0]["default"] as? Bool, true)
            let defaults = try XCTUnwrap(c["defaults"] as? [String: Any])
            XCTAssertEqual(defaults["width"] as? Int, 64)
            XCTAssertEqual(defaults["steps"] as? Int, 30)
            XCTAssertEqual(defaults["size_multiple"] as? Int, 32)
            let schedulers = try XCTUnwrap(c["schedulers"] as? [String])
            XCTAssertTrue(schedulers.contains("euler_a") && schedulers.contains("ddim"), "\(schedulers)")
            let limits = try XCTUnwrap(c["limits"] as? [String: Any])
            XCTAssertEqual(limits["max_pixels"] as? Int, 512 * 512)
            XCTAssertEqual(limits["max_batch"] as? Int, 3)
            XCTAssertEqual(limits["max_body_bytes"] as? Int, 1 << 20)
        }
    }

    func testMetricsCountJobsImagesStepsAndRequests() async throws {
        try await F.withServer { client, _ in
            let id = try await F.submit(client, ["prompt": "x", "steps": 3, "num_images": 2])
            _ = try await F.poll(client, id)
            _ = try await client.execute(uri: "/v1/jobs/nope", method: .get)
            let response = try await client.execute(uri: "/metrics", method: .get)
            XCTAssertEqual(response.status, .ok)
            XCTAssertTrue(response.headers[.contentType]?.hasPrefix("text/plain") ?? false)
            let lines = String(buffer: response.body).split(separator: "\n").map(String.init)
            func value(_ series: String) -> Double? {
                lines.first { $0.hasPrefix(series + " ") }.flatMap { Double($0.dropFirst(series.count + 1)) }
            }
            XCTAssertEqual(value("decidiffusion_jobs_total{status=\"succeeded\"}"), 1)
            XCTAssertEqual(value("decidiffusion_images_generated_total"), 2)
            XCTAssertEqual(value("decidiffusion_step_seconds_count"), 3)
            XCTAssertEqual(value("decidiffusion_queue_depth"), 0)
            XCTAssertEqual(value("decidiffusion_queue_capacity"), 16)
            // Routes, not raw paths, so job ids never make new series.
            XCTAssertEqual(value("decidiffusion_http_requests_total{method=\"GET\",route=\"/v1/jobs/{id}\",status=\"404\"}"), 1)
            XCTAssertFalse(lines.contains { $0.contains(id) })
        }
    }

    func testTheOpenAPIDocumentDescribesEveryRouteAndTheJobObject() async throws {
        try await F.withServer { client, _ in
            let response = try await client.execute(uri: "/openapi.json", method: .get)
            XCTAssertEqual(response.status, .ok)
            let doc = try F.object(response)
            XCTAssertEqual(doc["openapi"] as? String, "3.1.0")
            let paths = try XCTUnwrap(doc["paths"] as? [String: [String: Any]])
            let routes: [(String, String)] = [
                ("/v1/jobs", "post"), ("/v1/jobs/{id}", "get"), ("/v1/jobs/{id}", "delete"), ("/v1/jobs/{id}/cancel", "post"),
                ("/v1/jobs/{id}/events", "get"), ("/v1/jobs/{id}/images/{index}.png", "get"), ("/v1/capabilities", "get"),
                ("/healthz", "get"), ("/metrics", "get"), ("/openapi.json", "get"), ("/", "get"),
            ]
            for (path, method) in routes { XCTAssertNotNil(paths[path]?[method], "\(method) \(path)") }
            // Every fragment merged in (a fragment that is not valid JSON would be dropped silently).
            for fragment in OpenAPIDocument.fragments {
                let f = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(fragment.utf8)) as? [String: Any], "a fragment is not JSON")
                for path in (f["paths"] as? [String: Any] ?? [:]).keys { XCTAssertNotNil(paths[path], path) }
            }

            // Every key the server sends in a job object is in the schema's required list, and back.
            let id = try await F.submit(client, ["prompt": "x", "steps": 2])
            let job = try await F.poll(client, id)
            let schemas = try XCTUnwrap((doc["components"] as? [String: Any])?["schemas"] as? [String: [String: Any]])
            XCTAssertEqual(Set(try XCTUnwrap(schemas["Job"]?["required"] as? [String])), Set(job.keys))
            let requestFields = Set(try XCTUnwrap(schemas["JobRequest"]?["properties"] as? [String: Any]).keys)
            XCTAssertEqual(requestFields, Set(JobRequestBody.CodingKeys.allCases.map(\.stringValue)))
        }
    }
}
