// diffusers AutoencoderKL's tiled passes (`tiled_decode`, `_tiled_encode`, `blend_v` / `blend_h`),
// diffusers 0.42.
import DeciTensor

/// Tile sizes for tiled encoding and decoding (diffusers' `enable_vae_tiling`): images are cut
/// into `sampleTileSize` squares (latents into `latentTileSize` squares) overlapping by
/// `overlapFactor`, each is run alone, and neighbours are blended linearly across the overlap.
public struct VAETiling: Sendable, Equatable {
    public var sampleTileSize: Int
    public var latentTileSize: Int
    public var overlapFactor: Double

    public init(sampleTileSize: Int, latentTileSize: Int, overlapFactor: Double = 0.25) {
        precondition(sampleTileSize >= 2 && latentTileSize >= 2, "VAETiling: tiles must be at least 2 pixels, got \(sampleTileSize) / \(latentTileSize)")
        precondition(overlapFactor >= 0 && overlapFactor < 1, "VAETiling: overlap factor \(overlapFactor) must be in [0, 1)")
        self.sampleTileSize = sampleTileSize
        self.latentTileSize = latentTileSize
        self.overlapFactor = overlapFactor
    }

    /// diffusers' values: the config's `sample_size` and that size over the downscale factor,
    /// overlap 0.25.
    public init(config: AutoencoderKLConfig) {
        self.init(sampleTileSize: config.sampleSize,
                  latentTileSize: Int(Double(config.sampleSize) / Double(config.downscaleFactor)))
    }

    // Python's int() truncation, as diffusers sizes the steps.
    var latentStep: Int { Int(Double(latentTileSize) * (1 - overlapFactor)) }
    var sampleStep: Int { Int(Double(sampleTileSize) * (1 - overlapFactor)) }
    var sampleBlendExtent: Int { Int(Double(sampleTileSize) * overlapFactor) }
    var latentBlendExtent: Int { Int(Double(latentTileSize) * overlapFactor) }
}

/// Runs a function over overlapping square crops of an NHWC tensor and stitches the results as
/// diffusers' `tiled_decode` does: tiles are visited row by row; each is blended in place with the
/// (already blended) tile above, then the one to its left, and its top-left `keep` square is kept.
/// Only the previous row of results is held.
struct Tiler {
    let crop: Int
    let step: Int
    let blendExtent: Int
    let keep: Int

    func run(_ x: Tensor, _ f: (Tensor) -> Tensor) -> Tensor {
        precondition(step >= 1, "tiling step is \(step); the tile is too small for its overlap")
        let (hgt, wid) = (x.shape[1], x.shape[2])
        var above: [Tensor] = []
        var kept: [[Tensor]] = []
        for y0 in stride(from: 0, to: hgt, by: step) {
            var row: [Tensor] = []
            for x0 in stride(from: 0, to: wid, by: step) {
                let tile = f(Ops.crop(x, y: y0, x: x0, height: min(crop, hgt - y0), width: min(crop, wid - x0)))
                if !above.isEmpty { Ops.blendVertical(top: above[row.count], into: tile, extent: blendExtent) }
                if let left = row.last { Ops.blendHorizontal(left: left, into: tile, extent: blendExtent) }
                row.append(tile)
            }
            kept.append(row.map { Ops.crop($0, y: 0, x: 0, height: min(keep, $0.shape[1]), width: min(keep, $0.shape[2])) })
            above = row
        }
        return Ops.assemble(kept)
    }
}
