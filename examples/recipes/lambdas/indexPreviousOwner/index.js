// Updates one search index after a move.
exports.indexPreviousOwner = async (event) => ({ indexed: event.previous_owner, index: "indexPreviousOwner" });
