import DeciImage
import Foundation
import HummingbirdTesting
import XCTest

@testable import DeciServer

/// GET /v1/jobs/{id}/events: Server-Sent Events in order, previews on the asked steps, one final event.
final class JobEventsTests: XCTestCase {
    typealias F = ServerFixtures

    /// Splits an SSE body into (event, JSON data) frames, checking the wire format on the way.
    static func frames(_ text: String, file: StaticString = #filePath, line: UInt = #line) throws -> [(name: String, data: [String: Any])] {
        XCTAssertTrue(text.hasSuffix("\n\n"), "a stream ends with a complete frame", file: file, line: line)
        return try text.components(separatedBy: "\n\n").filter { !$0.isEmpty && !$0.hasPrefix(":") }.map { frame in
            let lines = frame.components(separatedBy: "\n")
            XCTAssertEqual(lines.count, 2, frame, file: file, line: line)
            let name = try XCTUnwrap(lines.first?.dropFirst("event: ".count), file: file, line: line)
            let data = try XCTUnwrap(lines.last?.dropFirst("data: ".count), file: file, line: line)
            let object = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(data.utf8)) as? [String: Any], file: file, line: line)
            return (String(name), object)
        }
    }

    func testEventsComeInOrderWithPreviewsAndEndAfterDone() async throws {
        try await F.withServer { client, _ in
            // A long job ahead keeps ours queued while the stream starts, so it sees every stage.
            let ahead = try await F.submit(client, ["prompt": "x", "steps": 1000])
            _ = try await F.poll(client, ahead) { $0["status"] as? String == "running" }
            let id = try await F.submit(client, ["prompt": "a red circle", "steps": 6, "seed": 3, "preview_every": 2,
                                                 "preview_decode_every": 3, "preview_upscale": true])
            async let body = client.execute(uri: "/v1/jobs/\(id)/events", method: .get)
            try await Task.sleep(for: .milliseconds(100))
            _ = try await client.execute(uri: "/v1/jobs/\(ahead)", method: .delete)
            let response = try await body
            XCTAssertEqual(response.status, .ok)
            XCTAssertEqual(response.headers[.contentType], "text/event-stream")
            XCTAssertEqual(response.headers[.cacheControl], "no-cache")
            let frames = try Self.frames(String(buffer: response.body))
            let names = frames.map(\.name)
            XCTAssertEqual(names.first, "queued", "\(names)")
            XCTAssertEqual(frames.first?.data["position"] as? Int, 1)
            XCTAssertEqual(names.last, "done", "\(names)")
            XCTAssertEqual(names.filter { $0 == "done" }.count, 1)
            let started = try XCTUnwrap(names.firstIndex(of: "started"), "\(names)")
            let progress = frames.enumerated().filter { $0.element.name == "progress" }
            XCTAssertTrue(progress.allSatisfy { $0.offset > started })
            XCTAssertEqual(progress.map { $0.element.data["step"] as? Int }, [1, 2, 3, 4, 5, 6])
            XCTAssertTrue(progress.allSatisfy { $0.element.data["total_steps"] as? Int == 6 })
            // Cheap previews every 2nd step (upscaled to 64 px), decoded ones every 3rd (decoded wins on step 6).
            var kinds: [Int: String] = [:]
            for (_, frame) in progress {
                guard let preview = frame.data["preview"] as? String else { continue }
                let step = try XCTUnwrap(frame.data["step"] as? Int)
                kinds[step] = frame.data["preview_kind"] as? String
                let image = try ImageFile.decode([UInt8](XCTUnwrap(Data(base64Encoded: preview)))).image
                XCTAssertEqual(image.width, 64, "step \(step)")
            }
            XCTAssertEqual(kinds, [2: "approximate", 3: "decoded", 4: "approximate", 6: "decoded"])
            let done = try XCTUnwrap(frames.last?.data)
            XCTAssertEqual(done["status"] as? String, "succeeded")
            XCTAssertEqual(done["images"] as? [String], ["/v1/jobs/\(id)/images/0.png"])
        }
    }

    func testAStreamOpenedAfterTheJobEndedGivesOnlyTheFinalEvent() async throws {
        try await F.withServer { client, _ in
            let id = try await F.submit(client, ["prompt": "x", "steps": 2])
            _ = try await F.poll(client, id)
            let response = try await client.execute(uri: "/v1/jobs/\(id)/events", method: .get)
            XCTAssertEqual(try Self.frames(String(buffer: response.body)).map(\.name), ["done"])
        }
    }

    func testACancelledJobsStreamEndsWithCancelled() async throws {
        try await F.withServer { client, _ in
            let id = try await F.submit(client, ["prompt": "x", "steps": 1000])
            async let body = client.execute(uri: "/v1/jobs/\(id)/events", method: .get)
            _ = try await F.poll(client, id) { ($0["step"] as? Int ?? 0) >= 2 }
            _ = try await client.execute(uri: "/v1/jobs/\(id)/cancel", method: .post)
            let frames = try Self.frames(String(buffer: try await body.body))
            XCTAssertEqual(frames.last?.name, "cancelled")
            XCTAssertEqual(frames.last?.data["partial"] as? Bool, true)
        }
    }
}
