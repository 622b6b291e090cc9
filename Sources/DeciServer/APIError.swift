// Every error the server answers with: `{"error": {"message", "field"?, "code"}}` and the status
// (plus Retry-After / WWW-Authenticate where they belong); on the OpenAI routes the same error in
// OpenAI's shape (OpenAI/OpenAIErrors.swift).
import DeciDiffusion
import Foundation
import Hummingbird

/// An error response.
public struct APIError: Error, HTTPResponseError, CustomStringConvertible {
    public var status: HTTPResponse.Status
    public var message: String
    public var field: String?
    public var code: String
    public var headers: HTTPFields

    public init(_ status: HTTPResponse.Status, code: String, _ message: String, field: String? = nil, headers: HTTPFields = [:]) {
        (self.status, self.code, self.message, self.field, self.headers) = (status, code, message, field, headers)
    }

    public var description: String { "\(status.code) \(code): \(message)" }

    struct Body: Encodable {
        struct Inner: Encodable {
            var message: String
            var field: String?
            var code: String
        }
        var error: Inner
    }

    public func response(from request: Request, context: some RequestContext) throws -> Response {
        if OpenAIErrors.applies(to: request.uri.path) { return try OpenAIErrors.response(for: self) }
        var headers = self.headers
        headers[.contentType] = "application/json"
        let data = try JSONEncoder().encode(Body(error: .init(message: message, field: field, code: code)))
        return Response(status: status, headers: headers, body: .init(byteBuffer: ByteBuffer(bytes: data)))
    }

    // MARK: - The common cases

    static func badRequest(_ message: String, field: String?, code: String = "invalid_request") -> APIError {
        APIError(.badRequest, code: code, message, field: field)
    }

    static func notFound(_ message: String) -> APIError { APIError(.notFound, code: "not_found", message) }

    static func payloadTooLarge(limit: Int) -> APIError {
        APIError(.contentTooLarge, code: "payload_too_large", "the request body is over the limit of \(limit) bytes (--max-body-mb)")
    }

    static let unauthorized = APIError(.unauthorized, code: "unauthorized", "missing or wrong API key: send Authorization: Bearer <key> (or HTTP Basic with the key as password)",
                                       headers: [.wwwAuthenticate: "Bearer realm=\"decidiffusion\""])

    /// What the service's refusal means over HTTP.
    init(_ error: ServiceError) {
        switch error {
        case let .queueFull(_, retryAfter):
            self.init(.tooManyRequests, code: "queue_full", error.description, headers: [.retryAfter: String(retryAfter)])
        case let .invalidRequest(message):
            // The message starts with the field it is about ("width: 65 is not a positive multiple of 8").
            self.init(.unprocessableContent, code: "invalid_value", message, field: APIError.leadingField(of: message))
        case .unknownModel:
            self.init(.badRequest, code: "unknown_model", error.description, field: "model")
        case .notFound:
            self.init(.notFound, code: "not_found", error.description)
        case .expired:
            self.init(.gone, code: "expired", error.description)
        case .noImage:
            self.init(.notFound, code: "no_image", error.description)
        case .shuttingDown:
            self.init(.serviceUnavailable, code: "shutting_down", error.description)
        case .unavailable:
            self.init(.serviceUnavailable, code: "queue_unavailable", error.description, headers: [.retryAfter: "2"])
        }
    }

    /// The API field a library message names first ("guidance scale: 200 is outside 0...100" → guidance_scale).
    static func leadingField(of message: String) -> String? {
        guard let colon = message.firstIndex(of: ":") else { return nil }
        let name = message[..<colon].trimmingCharacters(in: .whitespaces)
        let known: [String: String] = [
            "prompt": "prompt", "negative prompt": "negative_prompt", "images per prompt": "num_images", "num_images": "num_images",
            "batch": "num_images", "width": "width", "height": "height", "width x height": "width", "steps": "steps",
            "guidance scale": "guidance_scale", "guidance rescale": "guidance_rescale", "eta": "eta", "clip skip": "clip_skip",
            "strength": "strength", "mask": "mask", "init image": "init_image", "scheduler": "scheduler",
        ]
        if let f = known[name.lowercased()] { return f }
        return name.contains(" ") || name.isEmpty ? nil : name.lowercased()
    }
}
