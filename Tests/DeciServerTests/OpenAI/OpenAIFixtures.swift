import CImageCodecs
import DeciDiffusion
import DeciImage
import Foundation
import Hummingbird
import HummingbirdTesting
import MultipartKit
import NIOCore
import XCTest

@testable import DeciServer

/// Requests and checks shared by the OpenAI route tests.
enum OpenAIFixtures {
    typealias F = ServerFixtures

    static func generate(_ client: any TestClientProtocol, _ fields: [String: Any], headers: HTTPFields = [:]) async throws -> TestResponse {
        var headers = headers
        headers[.contentType] = "application/json"
        return try await client.execute(uri: "/v1/images/generations", method: .post, headers: headers, body: F.jsonBody(fields))
    }

    /// A file part of a multipart body.
    struct FilePart {
        var name: String
        var filename: String
        var bytes: [UInt8]
    }

    /// A multipart/form-data body as the `openai` client sends it: text fields, then files.
    static func multipart(_ fields: [(String, String)], files: [FilePart], boundary: String = "deci-test-boundary") throws -> (ByteBuffer, String) {
        var parts = fields.map { name, value in
            MultipartPart(headers: ["Content-Disposition": "form-data; name=\"\(name)\""], body: value)
        }
        parts += files.map { file in
            MultipartPart(headers: ["Content-Disposition": "form-data; name=\"\(file.name)\"; filename=\"\(file.filename)\"",
                                    "Content-Type": "image/png"], body: file.bytes)
        }
        var buffer = ByteBuffer()
        try MultipartSerializer().serialize(parts: parts, boundary: boundary, into: &buffer)
        return (buffer, "multipart/form-data; boundary=\(boundary)")
    }

    static func edit(_ client: any TestClientProtocol, _ fields: [(String, String)], files: [FilePart]) async throws -> TestResponse {
        let (body, contentType) = try multipart(fields, files: files)
        return try await client.execute(uri: "/v1/images/edits", method: .post, headers: [.contentType: contentType], body: body)
    }

    /// The decoded `b64_json` images of a 200 response.
    static func images(_ response: TestResponse, file: StaticString = #filePath, line: UInt = #line) throws -> [[UInt8]] {
        XCTAssertEqual(response.status, .ok, String(buffer: response.body), file: file, line: line)
        let data = try XCTUnwrap(F.object(response)["data"] as? [[String: Any]], file: file, line: line)
        return try data.map { item in
            let b64 = try XCTUnwrap(item["b64_json"] as? String, "\(item)", file: file, line: line)
            return [UInt8](try XCTUnwrap(Data(base64Encoded: b64), file: file, line: line))
        }
    }

    /// The inner error object, after checking the status, OpenAI's shape (every key present, `type`
    /// set) and the retry header.
    static func error(_ response: TestResponse, _ status: HTTPResponse.Status, retry: String? = "false",
                      file: StaticString = #filePath, line: UInt = #line) throws -> [String: Any] {
        XCTAssertEqual(response.status, status, String(buffer: response.body), file: file, line: line)
        XCTAssertEqual(response.headers[.contentType], "application/json", file: file, line: line)
        let inner = try XCTUnwrap(F.object(response, file: file, line: line)["error"] as? [String: Any], file: file, line: line)
        XCTAssertEqual(Set(inner.keys), ["message", "type", "param", "code"], "\(inner)", file: file, line: line)
        XCTAssertNotNil(inner["message"] as? String, file: file, line: line)
        XCTAssertNotNil(inner["type"] as? String, file: file, line: line)
        XCTAssertEqual(response.headers[OpenAIErrors.shouldRetry], retry, file: file, line: line)
        return inner
    }

    /// The same request straight through the library, as the CLI's `generate` runs it.
    static func direct(_ request: GenerationRequest) throws -> (GenerationResult, DiffusionPipeline) {
        let pipeline = try DiffusionPipeline(folder: F.demoFolder)
        return (try pipeline.generate(request), pipeline)
    }

    /// A two-tone test picture of the given size.
    static func picture(width: Int, height: Int) throws -> RGBImage {
        var px = [UInt8](repeating: 0, count: width * height * 3)
        for y in 0..<height {
            for x in 0..<width {
                let i = (y * width + x) * 3
                (px[i], px[i + 1], px[i + 2]) = x < width / 2 ? (200, 40, 40) : (40, 40, 200)
            }
        }
        return try RGBImage(width: width, height: height, pixels: px)
    }

    /// An RGBA PNG: `alpha(x, y)` per pixel over a gray picture.
    static func rgbaPNG(width: Int, height: Int, alpha: (Int, Int) -> UInt8) throws -> [UInt8] {
        var px = [UInt8](repeating: 0, count: width * height * 4)
        for y in 0..<height {
            for x in 0..<width {
                let i = (y * width + x) * 4
                (px[i], px[i + 1], px[i + 2], px[i + 3]) = (128, 128, 128, alpha(x, y))
            }
        }
        // DeciImage writes RGB only; the C shim under it takes RGBA.
        var out: UnsafeMutablePointer<UInt8>?
        var size = 0
        var message = [CChar](repeating: 0, count: 256)
        let status = px.withUnsafeBufferPointer { p in
            message.withUnsafeMutableBufferPointer { m in
                cic_png_encode(p.baseAddress, UInt32(width), UInt32(height), 4, 1, nil, 0, &out, &size, m.baseAddress, m.count)
            }
        }
        defer { cic_free(out) }
        guard status == 0, let out else { throw ImageError.invalidArgument("RGBA PNG encoding failed") }
        return Array(UnsafeBufferPointer(start: out, count: size))
    }
}
