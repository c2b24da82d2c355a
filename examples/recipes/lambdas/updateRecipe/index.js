// Moves the recipe to its new owner. A real one would write to the recipes
// table; this one answers what it would write, and who owned it before.
exports.updateRecipe = async (event) => {
  if (!event.id || !event.user_id) {
    throw new Error("a move needs the recipe id and the new owner's user_id");
  }
  return { id: event.id, previous_owner: `owner-of-${event.id}`, new_owner: event.user_id };
};
