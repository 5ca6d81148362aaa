import{u as r,Q as u}from"./c-api-SZ04t-3g.js";function a(e,s){return r(e,u)}export{a as u};
