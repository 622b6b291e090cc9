import DeciDiffusion
import DeciImage
import Foundation
import Hummingbird
import HummingbirdTesting
import NIOCore
import XCTest

@testable import DeciServer

/// POST /v1/images/edits: multipart parsing, OpenAI's alpha-mask semantics, image-to-image without a mask.
final class OpenAIEditsTests: XCTestCase {
    typealias F = ServerFixtures
    typealias O = OpenAIFixtures

    static let side = 64

    static func picturePNG() throws -> [UInt8] { try ImageFile.encodePNG(O.picture(width: Self.side, height: Self.side)) }

    /// Alpha 0 on the left half: OpenAI's "edit here".
    static func leftHalfMask() throws -> [UInt8] { try O.rgbaPNG(width: Self.side, height: Self.side) { x, _ in x < Self.side / 2 ? 0 : 255 } }

    /// The mask as the library takes it: white (repaint) where OpenAI's alpha is 0.
    static func libraryMask() throws -> RGBImage {
        try RGBImage(gray: (0..<(Self.side * Self.side)).map { $0 % Self.side < Self.side / 2 ? 255 : 0 }, width: Self.side, height: Self.side)
    }

    func testAnRGBAMaskInpaintsWhereAlphaIsZero() async throws {
        try await F.withServer { client, _ in
            let response = try await O.edit(client, [("prompt", "a cat"), ("seed", "21"), ("steps", "4"), ("n", "1")],
                                            files: [.init(name: "image", filename: "in.png", bytes: try Self.picturePNG()),
                                                    .init(name: "mask", filename: "mask.png", bytes: try Self.leftHalfMask())])
            let served = try XCTUnwrap(O.images(response).first)
            var request = GenerationRequest(prompt: "a cat")
            (request.seed, request.steps, request.strength) = (21, 4, 1.0)
            request.initImage = try O.picture(width: Self.side, height: Self.side)
            request.mask = try Self.libraryMask()
            let (direct, pipeline) = try O.direct(request)
            XCTAssertEqual(served, try direct.pngData(forImage: 0, model: pipeline.modelName))
            // The opposite convention (white = repaint on the opaque half) would give another image.
            request.mask = try RGBImage(gray: try Self.libraryMask().pixels.enumerated().compactMap { $0.offset % 3 == 0 ? 255 - $0.element : nil },
                                        width: Self.side, height: Self.side)
            let inverted = try pipeline.generate(request)
            XCTAssertNotEqual(served, try inverted.pngData(forImage: 0, model: pipeline.modelName))
        }
    }

    func testWithoutAMaskItIsImageToImageAtStrength075AndStrengthIsHonoured() async throws {
        try await F.withServer { client, _ in
            var request = GenerationRequest(prompt: "a fox")
            (request.seed, request.steps) = (4, 4)
            request.initImage = try O.picture(width: Self.side, height: Self.side)
            for strength in [nil, 0.5] as [Double?] {
                var fields = [("prompt", "a fox"), ("seed", "4"), ("steps", "4")]
                if let strength { fields.append(("strength", "\(strength)")) }
                let response = try await O.edit(client, fields, files: [.init(name: "image", filename: "in.png", bytes: try Self.picturePNG())])
                request.strength = strength ?? OpenAIEditRequest.defaultImageToImageStrength
                let (direct, pipeline) = try O.direct(request)
                XCTAssertEqual(try O.images(response).first, try direct.pngData(forImage: 0, model: pipeline.modelName), "strength \(strength ?? 0.75)")
            }
            XCTAssertEqual(OpenAIEditRequest.defaultImageToImageStrength, 0.75)
        }
    }

    /// `size` sets the output size (the image and mask are resized to it); without it the output
    /// has the image's size.
    func testSizeResizesTheEditAndAbsentKeepsTheImagesSize() async throws {
        try await F.withServer { client, service in
            let m = try XCTUnwrap(service.loadedPipeline()).imageSizeMultiple
            let files: [O.FilePart] = [.init(name: "image", filename: "in.png", bytes: try Self.picturePNG()),
                                       .init(name: "mask", filename: "mask.png", bytes: try Self.leftHalfMask())]
            let resized = try await O.edit(client, [("prompt", "x"), ("steps", "2"), ("size", "\(2 * m)x\(m)")], files: files)
            let image = try ImageFile.decode(try XCTUnwrap(O.images(resized).first)).image
            XCTAssertEqual([image.width, image.height], [2 * m, m])
            XCTAssertEqual(try F.object(resized)["size"] as? String, "\(2 * m)x\(m)")
            let kept = try await O.edit(client, [("prompt", "x"), ("steps", "2")], files: files)
            XCTAssertEqual(try F.object(kept)["size"] as? String, "\(Self.side)x\(Self.side)")
        }
    }

    /// `image[]` parts (the client's list form): the first is edited; an image's own transparency is
    /// its mask when no mask is sent.
    func testImageArrayUsesTheFirstAndTransparencyIsTheMask() async throws {
        try await F.withServer { client, _ in
            let transparent = try Self.leftHalfMask()
            let other = try ImageFile.encodePNG(RGBImage(width: 32, height: 32, red: 9))
            let response = try await O.edit(client, [("prompt", "a cat"), ("seed", "21"), ("steps", "4")],
                                            files: [.init(name: "image[]", filename: "a.png", bytes: transparent),
                                                    .init(name: "image[]", filename: "b.png", bytes: other)])
            let served = try XCTUnwrap(O.images(response).first)
            XCTAssertEqual(try ImageFile.decode(served).image.width, Self.side, "the first image, not the second")
            var request = GenerationRequest(prompt: "a cat")
            (request.seed, request.steps, request.strength) = (21, 4, 1.0)
            request.initImage = try ImageFile.decode(transparent).image
            request.mask = try Self.libraryMask()
            let (direct, pipeline) = try O.direct(request)
            XCTAssertEqual(served, try direct.pngData(forImage: 0, model: pipeline.modelName))
        }
    }

    func testBadFormsAndMasksAre400sThatSayWhy() async throws {
        try await F.withServer { client, _ in
            let image = O.FilePart(name: "image", filename: "in.png", bytes: try Self.picturePNG())
            let opaqueMask = O.FilePart(name: "mask", filename: "m.png", bytes: try ImageFile.encodePNG(RGBImage(width: Self.side, height: Self.side)))
            let smallMask = O.FilePart(name: "mask", filename: "m.png", bytes: try O.rgbaPNG(width: 32, height: 32) { _, _ in 0 })
            let cases: [([(String, String)], [O.FilePart], String, String)] = [
                ([("prompt", "x")], [image, opaqueMask], "mask", "no alpha channel"),
                ([("prompt", "x")], [image, smallMask], "mask", "does not match"),
                ([("prompt", "x")], [], "image", "required"),
                ([("prompt", "x")], [.init(name: "image", filename: "in.webp", bytes: Array("RIFF....WEBP".utf8))], "image", "PNG or JPEG"),
                ([], [image], "prompt", "required"),
                ([("prompt", "x"), ("n", "two")], [image], "n", "integer"),
                ([("prompt", "x"), ("strength", "2")], [image], "strength", "(0, 1]"),
                ([("prompt", "x"), ("output_format", "webp")], [image], "output_format", "webp"),
            ]
            for (fields, files, param, words) in cases {
                let e = try O.error(try await O.edit(client, fields, files: files), .badRequest)
                XCTAssertEqual(e["param"] as? String, param, "\(fields): \(e)")
                XCTAssertTrue((e["message"] as? String ?? "").contains(words), "\(fields): \(e)")
            }
            // Not multipart at all, or without a boundary.
            for contentType in ["application/json", "multipart/form-data", "multipart/form-data; boundary="] {
                let response = try await client.execute(uri: "/v1/images/edits", method: .post, headers: [.contentType: contentType],
                                                        body: ByteBuffer(string: "{}"))
                let e = try O.error(response, .badRequest)
                XCTAssertEqual(e["code"] as? String, "invalid_multipart", contentType)
            }
            // A body whose boundary never appears has no part.
            let (body, _) = try O.multipart([("prompt", "x")], files: [image], boundary: "one")
            let wrong = try await client.execute(uri: "/v1/images/edits", method: .post,
                                                 headers: [.contentType: "multipart/form-data; boundary=\"other\""], body: body)
            XCTAssertTrue((try O.error(wrong, .badRequest)["message"] as? String ?? "").contains("no complete part"))
        }
    }
}
