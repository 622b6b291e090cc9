enum OpenAPIDocument {
    static let json = #"{"openapi": "3.1.0", "info": {"title": "DeciDiffusion", "version": "1"}, "paths": {}}"#
}
