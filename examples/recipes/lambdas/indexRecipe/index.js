// Updates one search index after a move.
exports.indexRecipe = async (event) => ({ indexed: event.id, index: "indexRecipe" });
