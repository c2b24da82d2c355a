//! The example projects `stepgate init` writes, embedded in the binary
//! (build.rs lists their files), and what each adds: a README with the
//! commands that matter, and a .gitignore.

include!(concat!(env!("OUT_DIR"), "/examples.rs"));

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Example {
    /// The tutorial: an order routed on its payment status.
    Orders,
    /// A recipe moved to another user, then three indexes in parallel.
    Recipes,
    /// A synchronous quote from an Express workflow.
    Quote,
    /// A route only a token holder may call, behind a Lambda authorizer.
    Guarded,
}

impl Example {
    pub fn name(self) -> &'static str {
        match self {
            Example::Orders => "orders",
            Example::Recipes => "recipes",
            Example::Quote => "quote",
            Example::Guarded => "guarded",
        }
    }

    /// The example's own files, as in the repository.
    pub fn files(self) -> &'static [(&'static str, &'static str)] {
        EXAMPLES
            .iter()
            .find(|(name, _)| *name == self.name())
            .map(|(_, files)| *files)
            .expect("build.rs embeds every example")
    }

    /// What a call of its route looks like, for `stepgate invoke`.
    pub fn invoke_args(self) -> &'static str {
        match self {
            Example::Orders => "",
            Example::Recipes => " --route 'POST /recipes/r42/move' --order '{\"user_id\":\"u7\"}'",
            Example::Quote => {
                " --order '{\"items\":[{\"sku\":\"tea\",\"quantity\":2,\"unitPrice\":3.5}]}'"
            }
            Example::Guarded => " --token let-me-in --order '{\"name\":\"Ada\"}'",
        }
    }

    fn summary(self) -> &'static str {
        match self {
            Example::Orders => "`POST /orderprocess` starts the `OrderProcessor` state machine, which completes or cancels an order on its payment status.",
            Example::Recipes => "`POST /recipes/{id}/move` starts `RecipeMover`, which moves a recipe to another user, then updates three search indexes in parallel.",
            Example::Quote => "`POST /quote` runs the `Quote` Express workflow and answers with its result; a quote the rules refuse answers 422.",
            Example::Guarded => "`POST /greet` runs the `Greeting` Express workflow for callers the Lambda authorizer `gate` (`lambdas/checkToken`) allows: the right token gets an Allow policy, a wrong one a Deny (403), none at all 401.",
        }
    }

    /// Every file `init` writes: the example's, a README and a .gitignore.
    pub fn project(self) -> Vec<(&'static str, String)> {
        let mut files: Vec<(&'static str, String)> = self
            .files()
            .iter()
            .map(|(path, text)| (*path, text.to_string()))
            .collect();
        files.push(("README.md", self.readme()));
        files.push((".gitignore", GITIGNORE.to_string()));
        files
    }

    fn readme(self) -> String {
        format!(
            "# A stepgate project: {name}\n\n\
             {summary}\n\n\
             - `lambdas/NAME/`: one Lambda function each, with its node test (`index.test.js`);\n\
             - `definitions/NAME.asl.json`: one Step Functions state machine each;\n\
             - `stepgate.toml`: the routes of the REST API and the settings (see stepgate's docs/stack.md).\n\n\
             ## The three commands that matter\n\n\
             ```sh\n\
             stepgate deploy --stage dev\n\
             stepgate invoke --stage dev{invoke}\n\
             stepgate destroy --stage dev --yes\n\
             ```\n\n\
             `stepgate plan` shows what `deploy` would change, `stepgate graph` draws the stack,\n\
             and `node --test lambdas/` runs the functions' tests.\n",
            name = self.name(),
            summary = self.summary(),
            invoke = self.invoke_args(),
        )
    }
}

const GITIGNORE: &str = "node_modules/\n# stepgate deploy --outputs-file\noutputs.json\n";
