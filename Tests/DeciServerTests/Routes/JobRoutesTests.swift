import DeciDiffusion
import DeciImage
import Foundation
import Hummingbird
import HummingbirdTesting
import NIOCore
import XCTest

@testable import DeciServer

/// The native job API end to end over HTTP: submit, poll, image bytes, errors, cancellation.
final class JobRoutesTests: XCTestCase {
    typealias F = ServerFixtures

    func testAJobRoundTripsToTheLibrarysPNGBytes() async throws {
        try await F.withServer { client, _ in
            let response = try await client.execute(uri: "/v1/jobs", method: .post, body: F.jsonBody(
                ["prompt": "a red circle on a blue background", "steps": 5, "seed": 7, "num_images": 2, "negative_prompt": "blurry"]))
            XCTAssertEqual(response.status, .accepted)
            let created = try F.object(response)
            let id = try XCTUnwrap(created["id"] as? String)
            XCTAssertEqual(response.headers[.location], "/v1/jobs/\(id)")
            XCTAssertEqual(created["poll_url"] as? String, "/v1/jobs/\(id)")
            XCTAssertEqual(created["events_url"] as? String, "/v1/jobs/\(id)/events")
            XCTAssertEqual(created["status"] as? String, "queued")

            let job = try await F.poll(client, id)
            XCTAssertEqual(job["status"] as? String, "succeeded", "\(job)")
            XCTAssertEqual(job["seed"] as? Int, 7)
            XCTAssertEqual(job["step"] as? Int, 5)
            XCTAssertEqual(job["total_steps"] as? Int, 5)
            XCTAssertEqual(job["partial"] as? Bool, false)
            XCTAssertTrue(job["error"] is NSNull)
            XCTAssertNotNil(job["finished"] as? String)
            let images = try XCTUnwrap(job["images"] as? [String])
            XCTAssertEqual(images, ["/v1/jobs/\(id)/images/0.png", "/v1/jobs/\(id)/images/1.png"])

            // The same request through the library (which the CLI's `generate` writes byte for byte).
            let pipeline = try DiffusionPipeline(folder: F.demoFolder)
            var request = GenerationRequest(prompt: "a red circle on a blue background", negativePrompt: "blurry")
            (request.steps, request.seed, request.imagesPerPrompt) = (5, 7, 2)
            let direct = try pipeline.generate(request)
            for (i, url) in images.enumerated() {
                let png = try await client.execute(uri: url, method: .get)
                XCTAssertEqual(png.status, .ok)
                XCTAssertEqual(png.headers[.contentType], "image/png")
                let bytes = Array(png.body.readableBytesView)
                XCTAssertEqual(bytes, try direct.pngData(forImage: i, model: pipeline.modelName), "image \(i)")
                let parameters = try XCTUnwrap(ImageFile.decode(bytes).text("parameters"))
                XCTAssertTrue(parameters.hasPrefix("a red circle on a blue background\nNegative prompt: blurry\n"), "[\(parameters)]")
                XCTAssertTrue(parameters.contains("Seed: 7,") && parameters.contains("Batch pos: \(i)"), parameters)
            }
            let missing = try await client.execute(uri: "/v1/jobs/\(id)/images/2.png", method: .get)
            XCTAssertEqual(try F.error(missing, .notFound)["code"] as? String, "no_image")
            let notIndex = try await client.execute(uri: "/v1/jobs/\(id)/images/x.png", method: .get)
            XCTAssertEqual(notIndex.status, .notFound)
        }
    }

    func testImg2ImgTakesABase64ImageAndARandomSeedIsReported() async throws {
        try await F.withServer { client, _ in
            let source = try RGBImage(width: 64, height: 64, red: 128, green: 90, blue: 40)
            let png = try ImageFile.encodePNG(source)
            let id = try await F.submit(client, ["prompt": "a fox", "steps": 4, "strength": 0.5, "seed": -1,
                                                 "init_image": "data:image/png;base64," + Data(png).base64EncodedString()])
            let job = try await F.poll(client, id)
            XCTAssertEqual(job["status"] as? String, "succeeded", "\(job)")
            let seed = try XCTUnwrap(job["seed"] as? NSNumber).uint64Value
            let image = try await client.execute(uri: "/v1/jobs/\(id)/images/0.png", method: .get)
            let parameters = try XCTUnwrap(ImageFile.decode(Array(image.body.readableBytesView)).text("parameters"))
            XCTAssertTrue(parameters.contains("Seed: \(seed),"), parameters)
            XCTAssertTrue(parameters.contains("Denoising strength: 0.5"), parameters)
        }
    }

    func testBadBodiesAre400sThatNameTheField() async throws {
        try await F.withServer { client, _ in
            func post(_ raw: String) async throws -> TestResponse {
                try await client.execute(uri: "/v1/jobs", method: .post, body: ByteBuffer(string: raw))
            }
            var e = try F.error(try await post(""), .badRequest)
            XCTAssertEqual(e["code"] as? String, "invalid_json")
            e = try F.error(try await post("{not json"), .badRequest)
            XCTAssertEqual(e["code"] as? String, "invalid_json")
            e = try F.error(try await post("[1, 2]"), .badRequest)
            XCTAssertEqual(e["code"] as? String, "invalid_json")
            e = try F.error(try await post(#"{"steps": 4}"#), .badRequest)
            XCTAssertEqual(e["field"] as? String, "prompt")
            XCTAssertEqual(e["code"] as? String, "missing_field")
            e = try F.error(try await post(#"{"prompt": "x", "steps": "four"}"#), .badRequest)
            XCTAssertEqual(e["field"] as? String, "steps")
            XCTAssertEqual(e["message"] as? String, "steps: expected an integer")
            e = try F.error(try await post(#"{"prompt": "x", "seed": "abc"}"#), .badRequest)
            XCTAssertEqual(e["field"] as? String, "seed")
            e = try F.error(try await post(#"{"prompt": "x", "num_images": 0}"#), .badRequest)
            XCTAssertEqual(e["field"] as? String, "num_images")
            e = try F.error(try await post(#"{"prompt": "x", "init_image": "%%%"}"#), .badRequest)
            XCTAssertEqual(e["field"] as? String, "init_image")
            XCTAssertEqual(e["message"] as? String, "init_image: not valid base64")
            e = try F.error(try await post(#"{"prompt": "x", "mask": "aGVsbG8="}"#), .badRequest)
            XCTAssertEqual(e["field"] as? String, "mask")
            XCTAssertTrue((e["message"] as? String ?? "").hasPrefix("mask: cannot decode the image"), "\(e)")
            e = try F.error(try await post(#"{"prompt": "x", "init_image": "data:text/plain,hello"}"#), .badRequest)
            XCTAssertEqual(e["field"] as? String, "init_image")
            e = try F.error(try await post(#"{"prompt": "x", "preview_every": -1}"#), .badRequest)
            XCTAssertEqual(e["field"] as? String, "preview_every")
            e = try F.error(try await post(#"{"prompt": "x", "model": "../../etc/passwd"}"#), .badRequest)
            XCTAssertEqual(e["field"] as? String, "model")
            XCTAssertEqual(e["code"] as? String, "unknown_model")
        }
    }

    func testRuleBreakingValuesAre422sThatNameTheFieldAndTheRule() async throws {
        try await F.withServer(configure: { $0.limits = GenerationLimits(maxPixelsPerImage: 128 * 128, maxBatch: 2) }) { client, service in
            func refused(_ fields: [String: Any]) async throws -> [String: Any] {
                let response = try await client.execute(uri: "/v1/jobs", method: .post, body: F.jsonBody(["prompt": "x"].merging(fields) { $1 }))
                return try F.error(response, .unprocessableContent)
            }
            var e = try await refused(["width": 65])
            XCTAssertEqual(e["field"] as? String, "width")
            XCTAssertTrue((e["message"] as? String ?? "").contains("multiple of 32"), "\(e)")
            e = try await refused(["steps": 0])
            XCTAssertEqual(e["field"] as? String, "steps")
            e = try await refused(["guidance_scale": 1e9])
            XCTAssertEqual(e["field"] as? String, "guidance_scale")
            e = try await refused(["scheduler": "warp drive"])
            XCTAssertEqual(e["field"] as? String, "scheduler")
            e = try await refused(["width": 256, "height": 256])
            XCTAssertTrue((e["message"] as? String ?? "").contains("16384"), "names the pixel limit: \(e)")
            e = try await refused(["num_images": 3])
            XCTAssertTrue((e["message"] as? String ?? "").contains("2"), "names the batch limit: \(e)")
            // Nothing was queued for any of them.
            XCTAssertEqual(service.health.queueDepth, 0)
            XCTAssertNil(service.health.running)
        }
    }

    func testUnknownIdsAre404sAndExpiredResults410s() async throws {
        try await F.withServer(configure: { $0.resultLifetime = 0.2 }) { client, _ in
            for (uri, method) in [("/v1/jobs/nope", HTTPRequest.Method.get), ("/v1/jobs/nope/events", .get), ("/v1/jobs/nope/cancel", .post),
                                  ("/v1/jobs/nope", .delete), ("/v1/jobs/nope/images/0.png", .get)] {
                let response = try await client.execute(uri: uri, method: method)
                XCTAssertEqual(try F.error(response, .notFound)["code"] as? String, "not_found", "\(method) \(uri)")
            }
            let id = try await F.submit(client, ["prompt": "x", "steps": 2])
            _ = try await F.poll(client, id)
            try await Task.sleep(for: .milliseconds(400))
            for uri in ["/v1/jobs/\(id)", "/v1/jobs/\(id)/images/0.png"] {
                let response = try await client.execute(uri: uri, method: .get)
                XCTAssertEqual(try F.error(response, .gone)["code"] as? String, "expired", uri)
            }
        }
    }

    func testAFullQueueIs429WithRetryAfter() async throws {
        try await F.withServer(configure: { $0.queueSize = 1 }) { client, service in
            let long = try await F.submit(client, ["prompt": "x", "steps": 1000])
            _ = try await F.poll(client, long) { $0["status"] as? String == "running" }
            let waiting = try await F.submit(client, ["prompt": "x", "steps": 2])
            let response = try await client.execute(uri: "/v1/jobs", method: .post, body: F.jsonBody(["prompt": "x"]))
            XCTAssertEqual(try F.error(response, .tooManyRequests)["code"] as? String, "queue_full")
            let retry = try XCTUnwrap(response.headers[.retryAfter].flatMap { Int($0) }, "Retry-After in whole seconds")
            XCTAssertGreaterThanOrEqual(retry, 1)
            for id in [waiting, long] { _ = try await client.execute(uri: "/v1/jobs/\(id)", method: .delete) }
            XCTAssertEqual(service.health.queueDepth, 0)
        }
    }

    func testCancelStopsAQueuedJobAtOnceAndARunningOneWithinAStep() async throws {
        try await F.withServer { client, _ in
            let running = try await F.submit(client, ["prompt": "x", "steps": 1000])
            let queued = try await F.submit(client, ["prompt": "x", "steps": 4])
            let atStep3 = try await F.poll(client, running) { ($0["step"] as? Int ?? 0) >= 3 }
            XCTAssertEqual(atStep3["status"] as? String, "running")
            XCTAssertNotNil(atStep3["eta_seconds"] as? Double)
            XCTAssertNotNil(atStep3["seconds_per_step"] as? Double)

            let queuedJob = try await client.execute(uri: "/v1/jobs/\(queued)", method: .get)
            XCTAssertEqual(try F.object(queuedJob)["queue_position"] as? Int, 1)
            let cancelledQueued = try F.object(try await client.execute(uri: "/v1/jobs/\(queued)", method: .delete))
            XCTAssertEqual(cancelledQueued["status"] as? String, "cancelled")
            XCTAssertEqual(cancelledQueued["images"] as? [String], [])

            let before = try F.object(try await client.execute(uri: "/v1/jobs/\(running)", method: .get))["step"] as? Int ?? 0
            let answer = try await client.execute(uri: "/v1/jobs/\(running)/cancel", method: .post)
            XCTAssertEqual(answer.status, .ok)
            let cancelled = try F.object(answer)
            // The answer waits for the runner to stop, so it is already the final state.
            XCTAssertEqual(cancelled["status"] as? String, "cancelled")
            let stoppedAt = try XCTUnwrap(cancelled["step"] as? Int)
            XCTAssertLessThanOrEqual(stoppedAt, before + 2, "ran on after the cancel (asked at step ≥ \(before))")
            XCTAssertEqual(cancelled["partial"] as? Bool, true)
            XCTAssertEqual(cancelled["images"] as? [String], ["/v1/jobs/\(running)/images/0.png"])
            let partial = try await client.execute(uri: "/v1/jobs/\(running)/images/0.png", method: .get)
            XCTAssertEqual(try ImageFile.decode(Array(partial.body.readableBytesView)).image.width, 64)
            // Cancelling a finished job changes nothing.
            let again = try F.object(try await client.execute(uri: "/v1/jobs/\(running)/cancel", method: .post))
            XCTAssertEqual(again["step"] as? Int, stoppedAt)
            XCTAssertEqual(again["status"] as? String, "cancelled")
        }
    }

    func testKeepPartialFalseLeavesACancelledJobWithoutImages() async throws {
        try await F.withServer { client, _ in
            let id = try await F.submit(client, ["prompt": "x", "steps": 1000, "keep_partial": false])
            _ = try await F.poll(client, id) { ($0["step"] as? Int ?? 0) >= 2 }
            let cancelled = try F.object(try await client.execute(uri: "/v1/jobs/\(id)/cancel", method: .post))
            XCTAssertEqual(cancelled["status"] as? String, "cancelled")
            XCTAssertEqual(cancelled["images"] as? [String], [])
            XCTAssertEqual(cancelled["partial"] as? Bool, false)
        }
    }
}
