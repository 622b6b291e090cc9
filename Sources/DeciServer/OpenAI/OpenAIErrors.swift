// Errors on the OpenAI routes in OpenAI's shape, `{"error": {"message", "type", "param", "code"}}`,
// so the `openai` SDKs raise their typed exceptions (BadRequestError, NotFoundError, ...) with
// `.param` and `.code` filled in. Every error of the server is an ``APIError``; on these paths it
// is rendered here instead of in the native shape. Rendering by path (rather than catching in a
// route-group middleware) also covers the errors the router-wide middleware throws before any
// route runs: 401 from the API key check and 413 from the body limit.
import DeciDiffusion
import Foundation
import Hummingbird

enum OpenAIErrors {
    /// The paths whose errors use OpenAI's shape.
    static func applies(to path: String) -> Bool {
        path.hasPrefix("/v1/images/") || path == "/v1/models" || path.hasPrefix("/v1/models/")
    }

    struct Body: Encodable {
        struct Inner: Encodable {
            var message: String
            var type: String
            var param: String?
            var code: String?
            /// `param` and `code` are always present (null when unknown), as OpenAI sends them.
            func encode(to encoder: any Encoder) throws {
                var c = encoder.container(keyedBy: CodingKeys.self)
                try c.encode(message, forKey: .message)
                try c.encode(type, forKey: .type)
                try c.encode(param, forKey: .param)
                try c.encode(code, forKey: .code)
            }
            enum CodingKeys: String, CodingKey { case message, type, param, code }
        }
        var error: Inner
    }

    /// OpenAI's error `type` for a status.
    static func type(for status: HTTPResponse.Status) -> String {
        switch status.code {
        case 401, 403: "authentication_error"
        case 429: "rate_limit_error"
        case 500...: "server_error"
        default: "invalid_request_error"
        }
    }

    /// The openai clients retry 408, 409, 429 and 5xx (twice, by default) unless told not to. A 4xx
    /// outside those is the request's own fault, so the same request would fail again: say so.
    /// A 5xx keeps whatever the thrower decided (a deterministic generation failure says false).
    static func retryHeader(for status: HTTPResponse.Status) -> String? {
        switch status.code {
        case 408, 409, 429: nil
        case 400..<500: "false"
        default: nil
        }
    }

    /// (`HTTPField` itself is not re-exported by Hummingbird; its collection's element type is it.)
    static let shouldRetry = HTTPFields.Element.Name("x-should-retry")!

    static func response(for error: APIError) throws -> Response {
        var headers = error.headers
        headers[.contentType] = "application/json"
        if headers[shouldRetry] == nil, let value = retryHeader(for: error.status) { headers[shouldRetry] = value }
        let body = Body(error: .init(message: error.message, type: type(for: error.status), param: error.field, code: error.code))
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        return Response(status: error.status, headers: headers, body: .init(byteBuffer: ByteBuffer(bytes: try encoder.encode(body))))
    }
}

extension APIError {
    /// A 400 in OpenAI's vocabulary: `param` is the OpenAI field name.
    static func openAI(_ message: String, param: String?, code: String = "invalid_value") -> APIError {
        APIError(.badRequest, code: code, message, field: param)
    }

    /// The service's refusal on an OpenAI route: the same statuses as the native API, except that an
    /// invalid value is a 400 (OpenAI has no 422) whose `param` is the OpenAI field it came from, and
    /// an unknown model is OpenAI's 404 `model_not_found`.
    init(openAI error: ServiceError) {
        switch error {
        case let .invalidRequest(message):
            let param = APIError.leadingField(of: message).map { OpenAIImageOptions.openAIName(ofNative: $0) }
            self = .openAI(message, param: param)
        case .unknownModel:
            self.init(.notFound, code: "model_not_found", error.description, field: "model")
        default:
            self.init(error)
        }
    }
}
