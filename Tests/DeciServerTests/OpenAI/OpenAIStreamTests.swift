import DeciImage
import Foundation
import HummingbirdTesting
import XCTest

@testable import DeciServer

/// `stream: true`: partial images (0-based partial_image_index) from the service's previews, then the
/// completed image(s), in OpenAI's event shapes.
final class OpenAIStreamTests: XCTestCase {
    typealias F = ServerFixtures
    typealias O = OpenAIFixtures

    /// The frames of an SSE body: every one `event: <type>` + `data: <JSON whose type is the event's>`.
    static func events(_ response: TestResponse, file: StaticString = #filePath, line: UInt = #line) throws -> [[String: Any]] {
        XCTAssertEqual(response.status, .ok, String(buffer: response.body), file: file, line: line)
        XCTAssertEqual(response.headers[.contentType], "text/event-stream", file: file, line: line)
        let frames = try JobEventsTests.frames(String(buffer: response.body), file: file, line: line)
        for frame in frames { XCTAssertEqual(frame.data["type"] as? String, frame.name, file: file, line: line) }
        return frames.map(\.data)
    }

    func testPartialImagesThenTheCompletedImageWhichMatchesTheUnstreamedOne() async throws {
        try await F.withServer { client, service in
            let pipeline = try XCTUnwrap(service.loadedPipeline())
            let fields: [String: Any] = ["prompt": "a red circle", "steps": 8, "seed": 2, "n": 2]
            let events = try Self.events(try await O.generate(client, fields.merging(["stream": true, "partial_images": 3]) { $1 }))
            let types = events.map { $0["type"] as? String ?? "" }
            XCTAssertEqual(types, Array(repeating: "image_generation.partial_image", count: 3) + ["image_generation.completed", "image_generation.completed"])
            XCTAssertEqual(events.prefix(3).map { $0["partial_image_index"] as? Int }, [0, 1, 2])
            let size = "\(pipeline.defaults.width)x\(pipeline.defaults.height)"
            for event in events {
                XCTAssertEqual(event["size"] as? String, size)
                XCTAssertEqual(event["output_format"] as? String, "png")
                XCTAssertNotNil(event["created_at"] as? Int)
                // Partial images come at the requested size too.
                let image = try ImageFile.decode([UInt8](try XCTUnwrap(Data(base64Encoded: try XCTUnwrap(event["b64_json"] as? String))))).image
                XCTAssertEqual("\(image.width)x\(image.height)", size)
            }
            XCTAssertNotNil(events.last?["usage"] as? [String: Any])
            let unstreamed = try O.images(try await O.generate(client, fields))
            let completed = try events.suffix(2).map { [UInt8](try XCTUnwrap(Data(base64Encoded: $0["b64_json"] as? String ?? ""))) }
            XCTAssertEqual(completed, unstreamed)
        }
    }

    func testZeroPartialImagesSendsOnlyTheCompletedEvent() async throws {
        try await F.withServer { client, _ in
            let events = try Self.events(try await O.generate(client, ["prompt": "x", "steps": 4, "stream": true]))
            XCTAssertEqual(events.map { $0["type"] as? String }, ["image_generation.completed"])
        }
    }

    /// Fewer steps than partial images asked for: one preview per step before the last, never more.
    func testPartialImagesNeverRepeatTheFinalStep() async throws {
        try await F.withServer { client, _ in
            let events = try Self.events(try await O.generate(client, ["prompt": "x", "steps": 2, "stream": true, "partial_images": 3]))
            XCTAssertEqual(events.map { $0["type"] as? String }, ["image_generation.partial_image", "image_generation.completed"])
        }
    }

    func testEditsStreamImageEditEventsAndJPEG() async throws {
        try await F.withServer { client, _ in
            let image = try ImageFile.encodePNG(O.picture(width: 64, height: 64))
            let response = try await O.edit(client, [("prompt", "x"), ("steps", "8"), ("stream", "true"), ("partial_images", "1"),
                                                     ("output_format", "jpeg")],
                                            files: [.init(name: "image", filename: "in.png", bytes: image)])
            let events = try Self.events(response)
            XCTAssertEqual(events.map { $0["type"] as? String }, ["image_edit.partial_image", "image_edit.completed"])
            for event in events {
                let bytes = [UInt8](try XCTUnwrap(Data(base64Encoded: event["b64_json"] as? String ?? "")))
                XCTAssertEqual(try ImageFile.decode(bytes).format, .jpeg)
            }
        }
    }

    /// A refusal before the stream starts is a plain HTTP error, so the client raises its typed error.
    func testAFullQueueIsStillA429BeforeTheStream() async throws {
        try await F.withServer(configure: { $0.queueSize = 1 }) { client, _ in
            let running = try await F.submit(client, ["prompt": "x", "steps": 1000])
            _ = try await F.poll(client, running) { $0["status"] as? String == "running" }
            _ = try await F.submit(client, ["prompt": "x", "steps": 1000])
            let response = try await O.generate(client, ["prompt": "x", "stream": true])
            let e = try O.error(response, .tooManyRequests, retry: nil)
            XCTAssertEqual(e["type"] as? String, "rate_limit_error")
            XCTAssertNotNil(response.headers[.retryAfter])
        }
    }
}
