import DeciDiffusion
import DeciImage
import Foundation
import Hummingbird
import HummingbirdTesting
import NIOCore
import XCTest

@testable import DeciServer

/// POST /v1/images/generations: every field honoured, ignored or refused as documented.
final class OpenAIGenerationsTests: XCTestCase {
    typealias F = ServerFixtures
    typealias O = OpenAIFixtures

    func testB64JSONIsTheLibrarysPNGForTheSameRequest() async throws {
        try await F.withServer { client, _ in
            let response = try await O.generate(client, [
                "prompt": "a red circle", "n": 2, "seed": 11, "negative_prompt": "blurry", "steps": 3, "guidance_scale": 5.5,
                "scheduler": "euler_a",
            ])
            let body = try F.object(response)
            XCTAssertEqual(body["output_format"] as? String, "png")
            XCTAssertNotNil(body["created"] as? Int)
            let images = try O.images(response)
            XCTAssertEqual(images.count, 2)
            var request = GenerationRequest(prompt: "a red circle", negativePrompt: "blurry")
            (request.steps, request.seed, request.imagesPerPrompt, request.guidanceScale, request.scheduler) = (3, 11, 2, 5.5, "euler_a")
            let (direct, pipeline) = try O.direct(request)
            XCTAssertEqual(body["size"] as? String, "\(pipeline.defaults.width)x\(pipeline.defaults.height)")
            for i in 0..<2 { XCTAssertEqual(images[i], try direct.pngData(forImage: i, model: pipeline.modelName), "image \(i)") }
        }
    }

    func testSizeIsHonouredAndAutoIsTheDefault() async throws {
        try await F.withServer { client, service in
            let pipeline = try XCTUnwrap(service.loadedPipeline())
            let m = pipeline.imageSizeMultiple
            let response = try await O.generate(client, ["prompt": "x", "steps": 1, "size": "\(2 * m)x\(m)"])
            let image = try ImageFile.decode(try XCTUnwrap(O.images(response).first)).image
            XCTAssertEqual([image.width, image.height], [2 * m, m])
            XCTAssertEqual(try F.object(response)["size"] as? String, "\(2 * m)x\(m)")
            let auto = try await O.generate(client, ["prompt": "x", "steps": 1, "size": "auto"])
            XCTAssertEqual(try F.object(auto)["size"] as? String, "\(pipeline.defaults.width)x\(pipeline.defaults.height)")
        }
    }

    func testSizesTheModelCannotTakeAre400sWithTheRule() async throws {
        try await F.withServer { client, service in
            let m = try XCTUnwrap(service.loadedPipeline()).imageSizeMultiple
            for size in ["\(m + 1)x\(m)", "0x\(m)", "1024", "axb", "\(m)x\(m)x\(m)", "8192x\(m)"] {
                let e = try O.error(try await O.generate(client, ["prompt": "x", "size": size]), .badRequest)
                XCTAssertEqual(e["param"] as? String, "size", size)
                XCTAssertEqual(e["type"] as? String, "invalid_request_error")
                XCTAssertTrue((e["message"] as? String ?? "").contains("multiples of \(m)"), "\(e)")
            }
            // The pixel limit is part of the rule.
            let big = try O.error(try await O.generate(client, ["prompt": "x", "size": "4096x4096"]), .badRequest)
            XCTAssertEqual(big["param"] as? String, "size")
        }
    }

    func testURLResponsesServeThePNGOnThisServer() async throws {
        try await F.withServer { client, _ in
            let response = try await O.generate(client, ["prompt": "x", "steps": 2, "seed": 5, "response_format": "url"])
            XCTAssertEqual(response.status, .ok, String(buffer: response.body))
            let item = try XCTUnwrap((F.object(response)["data"] as? [[String: Any]])?.first)
            XCTAssertNil(item["b64_json"])
            let url = try XCTUnwrap(item["url"] as? String)
            XCTAssertTrue(url.hasPrefix("http://localhost/v1/jobs/job_"), url)
            let png = try await client.execute(uri: String(url.dropFirst("http://localhost".count)), method: .get)
            XCTAssertEqual(png.status, .ok)
            let b64 = try O.images(try await O.generate(client, ["prompt": "x", "steps": 2, "seed": 5]))
            XCTAssertEqual(Array(png.body.readableBytesView), b64.first)
        }
    }

    func testJPEGOutputUsesOutputCompressionAsQuality() async throws {
        try await F.withServer { client, _ in
            func jpeg(_ compression: Int) async throws -> [UInt8] {
                let response = try await O.generate(client, ["prompt": "x", "steps": 2, "seed": 1, "output_format": "jpeg",
                                                             "output_compression": compression])
                XCTAssertEqual(try F.object(response)["output_format"] as? String, "jpeg")
                return try XCTUnwrap(O.images(response).first)
            }
            let high = try await jpeg(100), low = try await jpeg(0)
            XCTAssertEqual(try ImageFile.decode(high).format, .jpeg)
            XCTAssertLessThan(low.count, high.count)
        }
    }

    func testRefusedValuesAre400sNamingTheParam() async throws {
        try await F.withServer(configure: { $0.limits.maxBatch = 3 }) { client, _ in
            let cases: [([String: Any], String, String)] = [
                (["prompt": "x", "output_format": "webp"], "output_format", "webp"),
                (["prompt": "x", "output_format": "gif"], "output_format", "png and jpeg"),
                (["prompt": "x", "output_format": "jpeg", "response_format": "url"], "output_format", "b64_json"),
                (["prompt": "x", "response_format": "link"], "response_format", "b64_json, url"),
                (["prompt": "x", "output_compression": 101], "output_compression", "0...100"),
                (["prompt": "x", "n": 0], "n", "1...3"),
                (["prompt": "x", "n": 4], "n", "--max-batch"),
                (["prompt": "x", "partial_images": 4, "stream": true], "partial_images", "0...3"),
                (["prompt": "x", "stream": true, "response_format": "url"], "response_format", "streamed"),
                (["prompt": "x", "steps": 0], "steps", "1...1000"),
                (["prompt": "x", "guidance_scale": 500], "guidance_scale", "0...100"),
                (["prompt": "x", "scheduler": "nope"], "scheduler", "nope"),
                (["prompt": ""], "prompt", "empty"),
                (["n": 1], "prompt", "required"),
                (["prompt": "x", "n": "two"], "n", "integer"),
                (["prompt": 3], "prompt", "string"),
                (["prompt": "x", "stream": "yes"], "stream", "true or false"),
                (["prompt": "x", "seed": "abc"], "seed", "integer"),
            ]
            for (body, param, words) in cases {
                let e = try O.error(try await O.generate(client, body), .badRequest)
                XCTAssertEqual(e["param"] as? String, param, "\(body): \(e)")
                XCTAssertTrue((e["message"] as? String ?? "").contains(words), "\(body): \(e)")
            }
            for raw in ["", "not json", "[1, 2]"] {
                let response = try await client.execute(uri: "/v1/images/generations", method: .post, body: ByteBuffer(string: raw))
                XCTAssertTrue(try O.error(response, .badRequest)["param"] is NSNull, raw)
            }
        }
    }

    func testModelIsOneOfTheCatalogAndUnknownIsOpenAIs404() async throws {
        try await F.withServer { client, _ in
            let ok = try await O.generate(client, ["prompt": "x", "steps": 1, "model": "demo"])
            XCTAssertEqual(ok.status, .ok)
            let e = try O.error(try await O.generate(client, ["prompt": "x", "model": "dall-e-3"]), .notFound)
            XCTAssertEqual(e["code"] as? String, "model_not_found")
            XCTAssertEqual(e["param"] as? String, "model")
            XCTAssertTrue((e["message"] as? String ?? "").contains("demo"), "names what is available: \(e)")
        }
    }

    /// OpenAI's model-specific knobs change nothing: the pixels are those of the same request without them.
    func testIgnoredFieldsAreAcceptedAndChangeNothing() async throws {
        try await F.withServer { client, _ in
            let plain = try O.images(try await O.generate(client, ["prompt": "x", "steps": 2, "seed": 9]))
            let decorated = try O.images(try await O.generate(client, [
                "prompt": "x", "steps": 2, "seed": 9, "quality": "hd", "style": "vivid", "user": "u-1", "background": "transparent",
                "moderation": "low", "input_fidelity": "high", "stream": false, "partial_images": 2, "some_future_field": ["a": 1],
            ]))
            XCTAssertEqual(plain, decorated)
        }
    }

    func testRandomSeedsDifferAndAGivenSeedRepeats() async throws {
        try await F.withServer { client, _ in
            let a = try O.images(try await O.generate(client, ["prompt": "x", "steps": 2, "seed": 3]))
            let b = try O.images(try await O.generate(client, ["prompt": "x", "steps": 2, "seed": 3]))
            let c = try O.images(try await O.generate(client, ["prompt": "x", "steps": 2, "seed": -1]))
            XCTAssertEqual(a, b)
            XCTAssertNotEqual(a, c)
        }
    }
}
